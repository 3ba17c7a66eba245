"""The live stack on a database of its own, for the e2e journeys and the browser tests.

The stack is the integration harness's (API and gateway simulator served over real HTTP,
a worker on its own task queue) against the session's real Postgres, Redis and Temporal.
The database is new each time, created in the session's Postgres server and migrated:
a billing run bills every customer in its database, and a report sums every bill of its
period, so exact figures need a database no other test writes to. So too the books'
check at the end, which then covers every bill there is.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
from temporalio.client import Client

from config.settings import Settings
from store.db import create_pool
from store.migrate import migrate_url
from tests.integration.harness import LiveStack, live_stack

# `open_stack(**overrides)`: what the e2e `open_stack` fixture hands a test.
StackFactory = Callable[..., AbstractAsyncContextManager[LiveStack]]


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


@asynccontextmanager
async def fresh_database(server_url: str) -> AsyncIterator[str]:
    """A migrated database of its own in the same server; dropped, connections and all, after."""
    # An identifier cannot be a query parameter; this one is made of hex digits only.
    name = f"e2e_{uuid.uuid4().hex[:16]}"
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        url = _with_database(server_url, name)
        try:
            await migrate_url(url)
            yield url
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@asynccontextmanager
async def journey_stack(settings: Settings, temporal: Client, tmp_path: Path,
                        **overrides: Any) -> AsyncIterator[LiveStack]:  # fmt: skip
    """The live stack on a fresh database; `overrides` are settings such as dunning_schedule.

    A journey that ends without an error ends with every bill of its database checked
    against the gateway (tests/books.py; `live.allow_captures` for an overpaid bill).
    """
    async with fresh_database(settings.database_url) as url:
        pool = await create_pool(url, min_size=1, max_size=10)
        try:
            base = settings.model_copy(update={"database_url": url})
            async with live_stack(
                base, pool, temporal, tmp_path, own_database=True, **overrides
            ) as live:
                yield live
        finally:
            await pool.close()
