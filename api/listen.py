"""`billing listen`: events of the local stack printed as they arrive, and forwarded.

Registers a temporary webhook endpoint pointing at a small receiver on 127.0.0.1 that this
command runs itself, verifies each delivery's Standard Webhooks signature, prints it,
forwards it unchanged (body and `webhook-*` headers) to `--forward-to`, and answers with
the forward's status, so a failing local app is retried like any receiver. The endpoint
is deleted on Ctrl-C (or SIGTERM). The service refuses loopback endpoints outside dev,
so this is for `make run`, as payment providers' CLIs are for their test mode.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

_FORWARDED = ("content-type", "webhook-id", "webhook-timestamp", "webhook-signature")
_MAX_BODY = 1 << 20


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


class Listener:
    """What the receiver threads share: the secret, the forward target, the count."""

    def __init__(self, forward_to: str | None, *, show_json: bool, exit_after: int) -> None:
        self.webhook: Webhook | None = None  # set once the endpoint (and secret) exists
        self.forward_to = forward_to
        self.show_json = show_json
        self.exit_after = exit_after
        self.received = 0
        self.done = threading.Event()
        self._lock = threading.Lock()

    def forward(self, body: bytes, headers: dict[str, str]) -> int:
        if self.forward_to is None:
            return 200
        sent = {k: v for k, v in headers.items() if k.lower() in _FORWARDED}
        try:
            with httpx.Client(timeout=10, follow_redirects=False) as client:
                return client.post(self.forward_to, content=body, headers=sent).status_code
        except httpx.HTTPError as exc:
            _say(f"  -> {self.forward_to} failed: {type(exc).__name__}: {exc}")
            return 502

    def handle(self, body: bytes, headers: dict[str, str]) -> int:
        if self.webhook is None:
            return 503  # not registered yet: the service retries
        try:
            event: dict[str, Any] = self.webhook.verify(body, headers)
        except WebhookVerificationError as exc:
            _say(f"refused a request: {exc}")
            return 400
        status = self.forward(body, headers)
        with self._lock:
            self.received += 1
            line = (
                f"{event['created_at']}  {event['type']:<28} {event['id']}  "
                f"{event.get('customer_id') or '-'}  seq {event['sequence']}"
            )
            if self.forward_to is not None:
                line += f"  -> {status}"
            _say(line)
            if self.show_json:
                _say(json.dumps(event, indent=2))
            if self.exit_after and self.received >= self.exit_after:
                self.done.set()
        return status


def _handler(listener: Listener) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (the stdlib's name)
            length = int(self.headers.get("content-length") or 0)
            if length > _MAX_BODY:
                self.send_response(413)
                self.end_headers()
                return
            body = self.rfile.read(length)
            status = listener.handle(body, {k.lower(): v for k, v in self.headers.items()})
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass  # one line per event is printed by the listener instead

    return Handler


def listen(
    client: httpx.Client,
    args: argparse.Namespace,
    answer: Callable[[httpx.Response], dict[str, Any]],
) -> str:
    """Run until Ctrl-C (or `--exit-after` events); the endpoint is deleted either way."""
    listener = Listener(args.forward_to, show_json=args.json, exit_after=args.exit_after)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), _handler(listener))
    url = f"http://127.0.0.1:{server.server_port}/"
    events = [e for e in (args.events or "").split(",") if e]
    try:
        made = answer(
            client.post(
                "/v1/webhook-endpoints",
                json={"url": url, "events": events, "description": "billing listen (temporary)"},
            )
        )
    except BaseException:
        server.server_close()
        raise
    listener.webhook = Webhook(made["secret"])
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    serving.start()
    target = args.forward_to or "nowhere (answering 200)"
    _say(f"Ready: endpoint {made['id']} -> {url}, forwarding to {target}. Ctrl-C to stop.")
    _say(f"Signing secret of this session: {made['secret']}")
    # SIGTERM stops it as Ctrl-C does, so the endpoint is deleted either way (signal
    # handlers belong to the main thread; a caller running this in a thread has its own).
    main = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGTERM)
    if main:
        signal.signal(signal.SIGTERM, lambda _signum, _frame: listener.done.set())
    try:
        while not listener.done.wait(0.2):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        if main:
            signal.signal(signal.SIGTERM, previous)
        server.shutdown()
        server.server_close()
        client.delete(f"/v1/webhook-endpoints/{made['id']}")
    return f"Stopped after {listener.received} event(s); endpoint {made['id']} deleted."
