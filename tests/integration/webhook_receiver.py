"""A real HTTP receiver on 127.0.0.1 for outbound webhooks, and a live stack that delivers.

`webhook_stack` is `live_stack` plus what delivery needs: the webhook worker polling the
attempts' queue and the dispatcher of the stack's task queue (both as `make run` has them).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
from fastapi import FastAPI, Request, Response
from standardwebhooks import Webhook
from temporalio.client import Client
from temporalio.service import RPCError

from config.settings import Settings
from worker import build_webhook_worker
from workflows.webhook_dispatch import WebhookDispatchWorkflow, ensure_dispatcher

from .harness import LiveStack, Served, bound_socket, live_stack


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.body)
        return data

    def verify(self, secret: str) -> dict[str, Any]:
        """Exactly what a receiver does: the Standard Webhooks library and the secret."""
        verified: dict[str, Any] = Webhook(secret).verify(self.body, self.headers)
        return verified


@dataclass
class Receiver:
    """Answers `status(n)` to its n-th request (1-based); records every request."""

    status: Callable[[int], int] = lambda n: 200
    delay_s: float = 0.0
    received: list[Received] = field(default_factory=list)
    sock: socket.socket = field(default_factory=bound_socket)
    _served: Served | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}/hooks"

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/hooks")
        async def hooks(request: Request) -> Response:
            self.received.append(Received(dict(request.headers), await request.body()))
            if self.delay_s:
                await asyncio.sleep(self.delay_s)
            return Response(status_code=self.status(len(self.received)))

        return app

    async def start(self) -> None:
        """Listen from now on; until then the socket is bound but refuses connections."""
        self._served = Served(self.app(), self.sock)
        await self._served.start()

    async def stop(self) -> None:
        if self._served is not None:
            await self._served.stop()
            self._served = None

    def of(self, event_id: str) -> list[Received]:
        return [r for r in self.received if r.headers.get("webhook-id") == event_id]


@asynccontextmanager
async def receiving(receiver: Receiver | None = None) -> AsyncIterator[Receiver]:
    receiver = receiver or Receiver()
    await receiver.start()
    try:
        yield receiver
    finally:
        await receiver.stop()


@asynccontextmanager
async def webhook_stack(
    base: Settings,
    pool: asyncpg.Pool,
    temporal: Client,
    tmp_path: Path,
    **overrides: Any,
) -> AsyncIterator[LiveStack]:
    """A live stack whose events are delivered: attempts worker and dispatcher running.

    Endpoints made during the block are deleted after it, so later tests' events do not
    go to receivers that are gone.
    """
    values = {"webhook_retry_schedule": "200ms,200ms,500ms", "webhook_timeout": "2s"}
    async with live_stack(base, pool, temporal, tmp_path, **(values | overrides)) as live:
        before = {r["id"] for r in await pool.fetch("SELECT id FROM webhook_endpoints")}
        dispatcher = await ensure_dispatcher(temporal, live.settings.task_queue)
        try:
            async with build_webhook_worker(temporal, live.settings, pool):
                yield live
        finally:
            handle = temporal.get_workflow_handle_for(WebhookDispatchWorkflow.run, dispatcher)
            with contextlib.suppress(RPCError):  # a test may have ended it already
                await handle.terminate("test over")
            made = await pool.fetch("SELECT id FROM webhook_endpoints")
            gone = [r["id"] for r in made if r["id"] not in before]
            await pool.execute("DELETE FROM webhook_endpoints WHERE id = ANY($1::text[])", gone)


async def eventually(
    check: Callable[[], Awaitable[Any]], *, within_s: float = 15.0, every: float = 0.05
) -> Any:
    """The first truthy answer of `check`; TimeoutError after `within_s` seconds."""
    async with asyncio.timeout(within_s):
        while True:
            found = await check()
            if found:
                return found
            await asyncio.sleep(every)
