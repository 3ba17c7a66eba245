"""The asyncpg pool, built once per process and passed down."""

from __future__ import annotations

import json
from typing import TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy

# A connection, whether plain or borrowed from the pool.
Conn: TypeAlias = "asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]"


PING = "SELECT 1"


async def ping(pool: asyncpg.Pool) -> None:
    """One round trip on a pooled connection: raises if Postgres does not answer."""
    await pool.fetchval(PING)


async def _init_connection(conn: asyncpg.Connection) -> None:
    # jsonb in and out as Python values; numeric already arrives as Decimal.
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Released connections skip asyncpg's RESET ALL / CLOSE ALL / UNLISTEN round trip.

    Safe because no code on these pools leaves session state behind: advisory locks are
    transaction-scoped (`pg_advisory_xact_lock*`), nothing runs SET, LISTEN or holds a
    cursor outside a transaction, and asyncpg still rolls back an open transaction on
    release. Code that needs session state takes its own connection (store/migrate.py).
    """


async def create_pool(database_url: str, *, min_size: int = 2, max_size: int = 10) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(
        database_url,
        min_size=min_size,
        max_size=max_size,
        init=_init_connection,
        reset=_keep_session,
    )
    assert pool is not None
    return pool
