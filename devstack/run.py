"""`make run`: dependencies, migrations, then the worker, the API and the gateway simulator.

Ctrl-C or SIGTERM cancels the one main task; its `finally` stops the children and then
the servers, so nothing outlives the command.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

import asyncpg

from config.settings import Settings
from devstack import announce
from devstack.errors import PortInUseError, StartupError
from devstack.ports import HOST, port_is_free
from devstack.servers import (
    PG_PORT,
    REDIS_PORT,
    TEMPORAL_PORT,
    TEMPORAL_UI_PORT,
    Dependencies,
    start_dependencies,
    watch,
)
from devstack.supervisor import ChildSpec, Supervisor
from devstack.temporal_server import ensure_search_attributes
from store.migrate import migrate_url

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = REPO_ROOT / ".devstack"


def echo(line: str) -> None:
    print(line, flush=True)


def gateway_available() -> bool:
    return (REPO_ROOT / "gateway_sim" / "__main__.py").exists()


def _wanted_ports(settings: Settings) -> list[tuple[int, str]]:
    wanted = [(settings.api_port, "the API")]
    for port, what in (
        (settings.worker_metrics_port, "worker metrics"),
        (settings.temporal_sdk_metrics_port, "Temporal SDK metrics"),
    ):
        if port:
            wanted.append((port, what))
    if gateway_available():
        wanted.append((settings.gateway_port, "the gateway simulator"))
    if not settings.database_url:
        wanted.append((PG_PORT, "Postgres"))
    if not settings.redis_url:
        wanted.append((REDIS_PORT, "Redis"))
    if "temporal_address" not in settings.model_fields_set:
        wanted += [(TEMPORAL_PORT, "Temporal frontend"), (TEMPORAL_UI_PORT, "Temporal Web UI")]
    return wanted


def check_ports(settings: Settings) -> None:
    """Fail before starting anything, naming every fixed port that is already taken."""
    taken = [(port, what) for port, what in _wanted_ports(settings) if not port_is_free(port)]
    if len(taken) == 1:
        raise PortInUseError(*taken[0])
    if taken:
        ports = ", ".join(f"{port} ({what})" for port, what in taken)
        raise StartupError(
            f"ports already in use on 127.0.0.1: {ports}; is another `make run` up? "
            "`ss -ltnp` shows who listens"
        )


def children(settings: Settings, deps: Dependencies) -> list[ChildSpec]:
    """The service's processes, each told where its dependencies are."""
    env = dict(os.environ)
    env.update(
        DATABASE_URL=deps.database_url,
        REDIS_URL=deps.redis_url,
        TEMPORAL_ADDRESS=deps.temporal_address,
        BILLING_API_KEY=settings.billing_api_key.get_secret_value(),
        GATEWAY_URL=settings.gateway_url,
        GATEWAY_WEBHOOK_URL=settings.gateway_webhook_url,
        GATEWAY_DB_PATH=str(DATA_DIR / "gateway.sqlite3"),
        PYTHONUNBUFFERED="1",
    )
    py = sys.executable
    api = [py, "-m", "uvicorn", "api.app:create_app", "--factory"]
    api += ["--host", HOST, "--port", str(settings.api_port)]
    specs = [
        ChildSpec("worker", [py, "worker.py"], env, REPO_ROOT),
        ChildSpec("api", api, env, REPO_ROOT),
    ]
    if gateway_available():
        specs.append(ChildSpec("gateway", [py, "-m", "gateway_sim"], env, REPO_ROOT))
    else:
        echo("[devstack] gateway_sim/__main__.py does not exist yet: gateway simulator skipped")
    return specs


async def _migrate(database_url: str) -> None:
    try:
        applied = await migrate_url(database_url)
    except (OSError, asyncpg.PostgresError) as exc:
        raise StartupError(f"cannot apply migrations to {database_url}: {exc}") from exc
    echo(f"[devstack] migrations: {', '.join(applied) if applied else 'up to date'}")


async def _register_search_attributes(settings: Settings, deps: Dependencies) -> None:
    if "temporal" in deps.owned:
        return  # the dev server we started already checked them
    try:
        args = (deps.temporal_address, settings.temporal_namespace)
        await asyncio.to_thread(ensure_search_attributes, *args)
    except StartupError as exc:
        echo(f"[devstack] warning: {exc}")


async def serve(settings: Settings) -> None:
    """Run the stack until cancelled; every started process is stopped on the way out."""
    began = time.monotonic()
    check_ports(settings)
    deps = await start_dependencies(settings, DATA_DIR)
    supervisor = Supervisor(DATA_DIR / "logs", echo=echo)
    background: list[asyncio.Task[None]] = []
    try:
        await _migrate(deps.database_url)
        await _register_search_attributes(settings, deps)
        specs = children(settings, deps)
        for spec in specs:
            supervisor.start(spec)
        background.append(asyncio.create_task(watch(deps, echo)))
        health = await announce.wait_healthy(f"http://{HOST}:{settings.api_port}/healthz")
        gateway = f"http://{HOST}:{settings.gateway_port}" if gateway_available() else None
        announce.banner(echo, settings, deps, gateway, health, time.monotonic() - began)
        background.append(asyncio.create_task(announce.schedules(echo, settings, deps)))
        await asyncio.Event().wait()  # until Ctrl-C / SIGTERM cancels this task
    finally:
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        await supervisor.stop()
        await asyncio.to_thread(deps.stop)


async def main_async(settings: Settings) -> int:
    task = asyncio.current_task()
    assert task is not None
    signalled: list[str] = []

    def on_signal(sig: signal.Signals) -> None:
        if not signalled:  # a second Ctrl-C must not interrupt the clean-up
            signalled.append(sig.name)
            echo(f"[devstack] {sig.name}: stopping every process ...")
            task.cancel()

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal, sig)
    try:
        await serve(settings)
    except asyncio.CancelledError:
        if not signalled:
            raise
        echo("[devstack] stopped: no process of the stack is left")
    except StartupError as exc:
        echo(f"[devstack] cannot start: {exc}")
        return 1
    return 0


def main(make_settings: Callable[[], Settings] = Settings) -> int:
    return asyncio.run(main_async(make_settings()))
