"""Real servers in the test's event loop: the API, the gateway simulator, the worker.

Postgres, Redis and Temporal are the session's real servers (tests/conftest.py);
nothing here fakes them.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import uvicorn
from fastapi import FastAPI
from temporalio.client import Client

from api.app import create_app
from config.settings import Settings
from gateway_sim.app import create_app as create_gateway
from payments.simulator import SimulatorGateway
from tests.books import BooksFigures, assert_books_match_gateway
from worker import build_worker

# How long the teardown check waits for a saga caught between the gateway and the ledger.
BOOKS_SETTLE_S = 10.0


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # The test process keeps its own signal handlers.
        yield


class Served:
    """`app` served by uvicorn on a free 127.0.0.1 port, in this event loop."""

    def __init__(self, app: FastAPI, sock: socket.socket | None = None) -> None:
        # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only then (else ~40 ms per response).
        self._sock = sock or bound_socket()
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        config = uvicorn.Config(
            app, log_level="warning", lifespan="on", timeout_graceful_shutdown=2
        )
        self._server = _Server(config)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> str:
        self._task = asyncio.create_task(self._server.serve(sockets=[self._sock]))
        async with asyncio.timeout(10):
            while not self._server.started:
                if self._task.done():
                    self._task.result()
                await asyncio.sleep(0.01)
        return self.url

    async def stop(self) -> None:
        self._server.should_exit = True
        if self._task is not None:
            await self._task
        self._sock.close()


def bound_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    return sock


@asynccontextmanager
async def serve(app: FastAPI, sock: socket.socket | None = None) -> AsyncIterator[str]:
    """Serve `app` for the duration of the block."""
    served = Served(app, sock)
    try:
        yield await served.start()
    finally:
        await served.stop()


@dataclass
class LiveStack:
    settings: Settings
    api: httpx.AsyncClient
    sim: httpx.AsyncClient
    pool: asyncpg.Pool
    # The books are checked for bills created from here on (None: the whole database).
    books_since: datetime | None = None
    captures_allowed: dict[str, int] = field(default_factory=dict)

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.settings.billing_api_key.get_secret_value()}"}

    async def sim_charges(self, **params: str) -> dict[str, Any]:
        response = await self.sim.get("/_sim/charges", params=params)
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def allow_captures(self, bill_id: str, captures: int) -> None:
        """This bill's path may capture it `captures` times (an overpayment, refunded)."""
        self.captures_allowed[bill_id] = captures

    async def reconcile_clean(self, since: datetime) -> dict[str, Any]:
        """Reconcile this stack's gateway against the ledger: nothing to fix, nothing unknown.

        The books check asserted the ledger equals the gateway; this asks the product's own
        reconciliation the same question, so it is proven on every stack a test runs.
        """
        started = await self.api.post(
            "/v1/reconciliations", json={"since": since.isoformat()}, headers=self.auth
        )
        assert started.status_code == 202, started.text
        report_id = started.json()["id"]
        async with asyncio.timeout(60):
            while True:
                answer = await self.api.get(f"/v1/reconciliations/{report_id}", headers=self.auth)
                report: dict[str, Any] = answer.json()
                if report.get("status") == "completed":
                    break
                await asyncio.sleep(0.1)
        assert report["unresolved"] == [], report
        assert report["fixed"] == [], report
        return report

    async def check_books(self, *, settle_s: float = 0.0) -> BooksFigures:
        return await assert_books_match_gateway(
            self.pool,
            self.sim,
            since=self.books_since,
            captures_allowed=self.captures_allowed,
            settle_s=settle_s,
        )


@asynccontextmanager
async def live_stack(
    base: Settings,
    pool: asyncpg.Pool,
    temporal: Client,
    tmp_path: Path,
    *,
    gateway_timeout_s: float = 10.0,
    own_database: bool = False,
    **overrides: Any,
) -> AsyncIterator[LiveStack]:
    """API and simulator over real HTTP (the webhook travels), worker on its own queue.

    A block that ends without an error ends with the books checked against the gateway
    (tests/books.py): every bill when the database is the stack's own, else every bill
    created since the stack started (tests share the session's database, not simulators).
    """
    # The database's clock stamps bills.created_at, so it has no skew to allow for; a
    # margin would take in the last bills of the test before, made on another simulator.
    since = None if own_database else await pool.fetchval("SELECT clock_timestamp()")
    opened = datetime.now(UTC) - timedelta(seconds=1)
    api_sock, sim_sock = bound_socket(), bound_socket()
    api_url = f"http://127.0.0.1:{api_sock.getsockname()[1]}"
    sim_url = f"http://127.0.0.1:{sim_sock.getsockname()[1]}"
    values: dict[str, Any] = {
        "task_queue": f"it-{uuid.uuid4().hex[:8]}",
        "gateway_url": sim_url,
        "gateway_webhook_url": f"{api_url}/v1/webhooks/gateway",
        "gateway_db_path": str(tmp_path / "gateway.sqlite3"),
        "bank_transfer_settlement_delay": "500ms",
        "dunning_schedule": "2s,2s,2s",
        "bank_transfer_deadline": "30s",
    } | overrides
    settings = base.model_copy(update=values)
    gateway = SimulatorGateway(sim_url, timeout_s=gateway_timeout_s)
    async with (
        serve(create_gateway(settings), sim_sock),
        serve(create_app(settings), api_sock),
        httpx.AsyncClient(base_url=api_url, timeout=30) as api,
        httpx.AsyncClient(base_url=sim_url, timeout=30) as sim,
        build_worker(temporal, settings, pool, gateway),
    ):
        live = LiveStack(settings=settings, api=api, sim=sim, pool=pool, books_since=since)
        try:
            yield live
            # Only after a clean exit: a test's own failure is not masked by this one.
            await live.check_books(settle_s=BOOKS_SETTLE_S)
            await live.reconcile_clean(opened)
        finally:
            await gateway.aclose()
