"""Session fixtures: real Postgres, Redis and Temporal, through the same code as `make run`.

A server starts only when a test asks for it (unit tests stay fast), on free ports in a
temporary directory, unless DATABASE_URL / REDIS_URL / TEMPORAL_ADDRESS name running
ones. Every server started here is stopped at the end of the session.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio
from redis.asyncio import Redis
from temporalio.client import Client

from config.settings import Settings
from devstack.services import (
    ensure_search_attributes,
    free_port,
    start_postgres,
    start_redis,
    start_temporal,
)
from store.db import create_pool
from store.migrate import migrate_url
from tests.converter import DATA_CONVERTER

NAMESPACE = "default"

pytest_plugins = ["tests.watchdog"]


@pytest.fixture(scope="session")
def devstack_dir() -> Iterator[Path]:
    """Where this session's servers keep their data and logs, removed at the end.

    Not under pytest's basetemp: every new pytest session chmods /tmp/pytest-of-<user>
    back to 0700, which would lock out the unprivileged user Postgres runs as under root.
    """
    path = Path(tempfile.mkdtemp(prefix="billing-devstack-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def database_url(devstack_dir: Path) -> AsyncIterator[str]:
    """A Postgres database with every migration applied."""
    url = os.environ.get("DATABASE_URL")
    if url:
        await migrate_url(url)
        yield url
        return
    server = await asyncio.to_thread(
        start_postgres,
        devstack_dir / "postgres",
        free_port(),
        devstack_dir / "logs" / "postgres.log",
        durable=False,  # a throwaway instance: fsync off is fine here, never in make run
    )
    try:
        await migrate_url(server.url)
        yield server.url
    finally:
        await asyncio.to_thread(server.stop)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def redis_url(devstack_dir: Path) -> AsyncIterator[str]:
    url = os.environ.get("REDIS_URL")
    if url:
        yield url
        return
    server = await asyncio.to_thread(
        start_redis,
        free_port(),
        devstack_dir / "redis",
        devstack_dir / "logs" / "redis.log",
        durable=False,
    )
    try:
        yield server.url
    finally:
        await asyncio.to_thread(server.stop)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def temporal_address(devstack_dir: Path) -> AsyncIterator[str]:
    """A Temporal frontend whose `default` namespace has the billing search attributes."""
    address = os.environ.get("TEMPORAL_ADDRESS")
    if address:
        await asyncio.to_thread(ensure_search_attributes, address, NAMESPACE)
        yield address
        return
    server = await asyncio.to_thread(
        start_temporal, free_port(), devstack_dir / "logs" / "temporal.log"
    )
    try:
        yield server.address
    finally:
        await asyncio.to_thread(server.stop)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def db_pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(database_url)
    try:
        yield pool
    finally:
        await pool.close()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def redis_client(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    try:
        yield client
    finally:
        await client.aclose()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def temporal_client(temporal_address: str) -> Client:
    return await Client.connect(
        temporal_address, namespace=NAMESPACE, data_converter=DATA_CONVERTER
    )


@pytest.fixture(scope="session")
def settings(
    database_url: str, redis_url: str, temporal_address: str, devstack_dir: Path
) -> Settings:
    """Settings pointing at this session's servers; the gateway's state stays out of the repo."""
    return Settings(
        environment="test",
        database_url=database_url,
        redis_url=redis_url,
        temporal_address=temporal_address,
        temporal_namespace=NAMESPACE,
        gateway_db_path=str(devstack_dir / "gateway.sqlite3"),
    )
