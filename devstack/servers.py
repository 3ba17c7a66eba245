"""The dependencies `make run` needs: the servers the environment names, or ones it starts.

Fixed ports (15432, 16379, 7233/8233) keep the docs stable and never collide with a
machine's own 5432/6379; state lives under `.devstack/` so a second run keeps its data.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from config.settings import Settings
from devstack.postgres import PostgresServer, start_postgres
from devstack.redis_server import RedisServer, start_redis
from devstack.temporal_server import TemporalServer, start_temporal

PG_PORT = 15432
REDIS_PORT = 16379
TEMPORAL_PORT = 7233
TEMPORAL_UI_PORT = 8233

Server = PostgresServer | RedisServer | TemporalServer


@dataclass
class Dependencies:
    """Where the service finds Postgres, Redis and Temporal, and which servers we own."""

    database_url: str
    redis_url: str
    temporal_address: str
    temporal_ui_url: str | None
    # name -> (running server, how to start it again)
    owned: dict[str, tuple[Server, Callable[[], Server]]] = field(default_factory=dict)

    def stop(self) -> None:
        for server, _ in reversed(list(self.owned.values())):
            server.stop()


def _starters(settings: Settings, root: Path) -> dict[str, Callable[[], Server]]:
    logs = root / "logs"
    starters: dict[str, Callable[[], Server]] = {}
    if not settings.database_url:
        starters["postgres"] = lambda: start_postgres(
            root / "postgres", PG_PORT, logs / "postgres.log"
        )
    if not settings.redis_url:
        starters["redis"] = lambda: start_redis(REDIS_PORT, root / "redis", logs / "redis.log")
    if "temporal_address" not in settings.model_fields_set:
        starters["temporal"] = lambda: start_temporal(
            TEMPORAL_PORT,
            logs / "temporal.log",
            ui_port=TEMPORAL_UI_PORT,
            db_file=root / "temporal.db",
            ui_codec_endpoint=f"http://127.0.0.1:{settings.api_port}/codec",
        )
    return starters


async def start_dependencies(settings: Settings, root: Path) -> Dependencies:
    """Start, concurrently, each server the environment does not name; all or none."""
    starters = _starters(settings, root)
    starting = asyncio.gather(
        *(asyncio.to_thread(start) for start in starters.values()), return_exceptions=True
    )
    try:
        results = await asyncio.shield(starting)
    except asyncio.CancelledError:
        # Ctrl-C while servers start: let them finish (bounded waits), then stop them all.
        for result in await starting:
            if not isinstance(result, BaseException):
                await asyncio.to_thread(result.stop)
        raise
    owned: dict[str, tuple[Server, Callable[[], Server]]] = {}
    failures: list[BaseException] = []
    for (name, start), result in zip(starters.items(), results, strict=True):
        if isinstance(result, BaseException):
            failures.append(result)
        else:
            owned[name] = (result, start)
    deps = Dependencies(
        database_url=settings.database_url,
        redis_url=settings.redis_url,
        temporal_address=settings.temporal_address,
        temporal_ui_url=None,
        owned=owned,
    )
    if failures:
        await asyncio.to_thread(deps.stop)
        raise failures[0]
    for server, _ in owned.values():
        if isinstance(server, PostgresServer):
            deps.database_url = server.url
        elif isinstance(server, RedisServer):
            deps.redis_url = server.url
        else:
            deps.temporal_address, deps.temporal_ui_url = server.address, server.ui_url
    return deps


async def watch(deps: Dependencies, echo: Callable[[str], None]) -> None:
    """Start again any owned server that exits; runs until cancelled."""
    while True:
        await asyncio.sleep(1.0)
        for name, (server, start) in list(deps.owned.items()):
            code = server.process.popen.poll()
            if code is None:
                continue
            echo(f"[devstack] {name} exited with code {code}; starting it again")
            server.stop()  # reap and clear whatever is left of its process group
            try:
                deps.owned[name] = (await asyncio.to_thread(start), start)
            except Exception as exc:
                echo(f"[devstack] {name} did not come back: {exc}; retrying in 5s")
                await asyncio.sleep(5.0)
            else:
                echo(f"[devstack] {name} is back")
