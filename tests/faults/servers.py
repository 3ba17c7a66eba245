"""The fault tests' own Postgres, Redis and Temporal: stopped and started again at will.

Each keeps its port and its data across a restart (Postgres its data directory, Redis its
append-only file, Temporal its SQLite file), so a restart is the fault a production
server has, not a fresh server. None of them is the session's shared server.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path

from devstack.services import (
    PostgresServer,
    RedisServer,
    TemporalServer,
    free_port,
    start_postgres,
    start_redis,
    start_temporal,
)
from store.migrate import migrate_url


@dataclass
class FaultServers:
    """Three servers on fixed free ports under `root`; `stop_*`/`start_*` keep their data."""

    root: Path
    pg_port: int = field(default_factory=free_port)
    redis_port: int = field(default_factory=free_port)
    temporal_port: int = field(default_factory=free_port)
    postgres: PostgresServer | None = None
    redis: RedisServer | None = None
    temporal: TemporalServer | None = None

    @property
    def database_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.pg_port}/billing"

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"

    @property
    def temporal_address(self) -> str:
        return f"127.0.0.1:{self.temporal_port}"

    @property
    def temporal_db(self) -> Path:
        return self.root / "temporal" / "temporal.db"

    def _log(self, name: str) -> Path:
        return self.root / "logs" / f"{name}.log"

    async def start_postgres(self) -> float:
        """Start (or start again) Postgres; returns the seconds it took to answer."""
        began = time.monotonic()
        self.postgres = await asyncio.to_thread(
            start_postgres,
            self.root / "postgres",
            self.pg_port,
            self._log("postgres"),
            durable=False,  # a clean fast shutdown checkpoints: nothing committed is lost
        )
        await migrate_url(self.database_url)
        return time.monotonic() - began

    async def stop_postgres(self) -> None:
        """Fast shutdown: open sessions are cut (AdminShutdown), committed work stays."""
        if self.postgres is not None:
            await asyncio.to_thread(self.postgres.stop)
            self.postgres = None

    async def start_redis(self) -> float:
        began = time.monotonic()
        self.redis = await asyncio.to_thread(
            start_redis, self.redis_port, self.root / "redis", self._log("redis"), durable=False
        )
        return time.monotonic() - began

    async def stop_redis(self) -> None:
        if self.redis is not None:
            await asyncio.to_thread(self.redis.stop)
            self.redis = None

    async def start_temporal(self) -> float:
        began = time.monotonic()
        self.temporal = await asyncio.to_thread(
            start_temporal, self.temporal_port, self._log("temporal"), db_file=self.temporal_db
        )
        return time.monotonic() - began

    async def stop_temporal(self) -> None:
        if self.temporal is not None:
            await asyncio.to_thread(self.temporal.stop)
            self.temporal = None

    async def ensure_all(self) -> None:
        """Whatever an earlier test left stopped is started again."""
        if self.postgres is None or not self.postgres.process.running():
            await self.start_postgres()
        if self.redis is None or not self.redis.process.running():
            await self.start_redis()
        if self.temporal is None or not self.temporal.process.running():
            await self.start_temporal()

    async def stop_all(self) -> None:
        await self.stop_temporal()
        await self.stop_redis()
        await self.stop_postgres()
