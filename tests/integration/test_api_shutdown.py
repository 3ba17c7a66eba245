"""The API's shutdown ends in bounded time whatever its dependencies do (real servers)."""

from __future__ import annotations

import asyncio
import logging

import asyncpg
import pytest

import api.app as api_app
from api.app import create_app
from billing.settings import Settings
from store.rebuild import CounterWatch


async def test_a_connection_never_returned_does_not_hold_shutdown(
    settings: Settings,
    db_pool: asyncpg.Pool,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(api_app, "SHUTDOWN_STEP_S", 0.5)
    app = create_app(settings)
    async with asyncio.timeout(10):  # asyncpg alone would wait for the connection for ever
        async with app.router.lifespan_context(app):
            leaked = await app.state.billing.pool.acquire()
            pid = leaked.get_server_pid()
    # The server saw the connection go (within 5 s).
    sql = "SELECT count(*) FROM pg_stat_activity WHERE pid = $1"
    for _ in range(100):
        if not await db_pool.fetchval(sql, pid):
            break
        await asyncio.sleep(0.05)
    assert await db_pool.fetchval(sql, pid) == 0
    assert "Postgres pool not closed after" in caplog.text


async def test_a_watch_that_ignores_its_cancel_does_not_hold_shutdown(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(api_app, "SHUTDOWN_STEP_S", 0.5)
    released = asyncio.Event()

    async def stubborn(self: CounterWatch) -> None:
        while not released.is_set():
            try:
                await released.wait()
            except asyncio.CancelledError:
                continue  # swallowed, as a library racing a timeout against a cancel may

    monkeypatch.setattr(CounterWatch, "run", stubborn)
    app = create_app(settings)
    caplog.set_level(logging.ERROR, logger="api.app")
    async with asyncio.timeout(10):
        async with app.router.lifespan_context(app):
            await asyncio.sleep(0.05)  # the watch starts (a task cancelled unstarted just ends)
    assert "counter watch still running" in caplog.text
    released.set()  # let it end, so no task outlives the test
