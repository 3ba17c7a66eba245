"""One fault test's service: API in this process, worker and simulator as subprocesses.

Each test gets its own database (on the fault tests' own Postgres), its own task queue
and its own simulator state, so what one fault leaves behind never reaches another.
"""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from temporalio.client import Client

from api.app import create_app
from config.settings import Settings
from devstack.services import free_port
from store.db import create_pool
from store.migrate import migrate_url
from tests.converter import DATA_CONVERTER
from tests.integration.harness import serve

from .plans import PERIOD, PERIOD_START, Customer, Plan
from .polling import until
from .procs import Processes
from .servers import FaultServers


async def new_database(servers: FaultServers) -> str:
    """A fresh database on the fault Postgres, migrated; returns its URL."""
    name = f"fault_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(servers.database_url.rsplit("/", 1)[0] + "/postgres")
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')  # a generated identifier, not input
    finally:
        await conn.close()
    url = servers.database_url.rsplit("/", 1)[0] + f"/{name}"
    await migrate_url(url)
    return url


def env_of(settings: Settings) -> dict[str, str]:
    """The settings as the environment variables a subprocess reads them from."""
    out: dict[str, str] = {}
    for name, value in settings.model_dump().items():
        raw = value.get_secret_value() if hasattr(value, "get_secret_value") else value
        out[name.upper()] = str(raw)
    return out


@dataclass
class FaultStack:
    settings: Settings
    procs: Processes
    api: httpx.AsyncClient
    sim: httpx.AsyncClient
    pool: asyncpg.Pool
    temporal: Client
    api_url: str
    customers: list[Customer] = field(default_factory=list)

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.settings.billing_api_key.get_secret_value()}"}

    async def create_customers(
        self, plans: Sequence[Plan], *, track: bool = True, started_now: bool = False
    ) -> list[Customer]:
        """Through the API; `track` adds them to the customers the checks expect bills of."""
        gate = asyncio.Semaphore(8)
        started_at = datetime.now(UTC) if started_now else PERIOD_START

        async def one(plan: Plan) -> Customer:
            async with gate:
                body = {
                    "name": "Fault Test",
                    "email": f"{uuid.uuid4().hex[:10]}@example.com",
                    "tier": plan.tier,
                    "auto_upgrade": False,
                    "started_at": started_at.isoformat(),
                }
                created = await self.api.post("/v1/customers", json=body, headers=self.auth)
                assert created.status_code == 201, created.text
                cid = created.json()["id"]
                if plan.method is not None:
                    attached = await self.api.post(
                        f"/v1/customers/{cid}/payment-methods",
                        json={"type": plan.method, "token": plan.token},
                        headers=self.auth,
                    )
                    assert attached.status_code == 201, attached.text
                return Customer(cid, created.json()["api_key"], plan)

        made = await asyncio.gather(*(one(p) for p in plans))
        if track:
            self.customers.extend(made)
        return made

    async def record_usage(self, customers: Sequence[Customer]) -> int:
        """One batch of last period's usage per paid customer; returns the events accepted."""
        at = PERIOD_START.replace(day=5).isoformat()
        accepted = 0
        for c in customers:
            if c.plan.tier == "free":
                continue
            events = [
                {"event_id": f"{c.id}-{i}", "customer_id": c.id, "kind": kind, "quantity": q,
                 "occurred_at": at}
                for i, (kind, q) in enumerate(
                    [("api_call", 1200), ("llm_tokens", 50_000), ("agent_execution", 7)]
                )
            ]  # fmt: skip
            answer = await self.api.post(
                "/v1/usage/batch", json={"events": events}, headers=self.auth
            )
            assert answer.status_code == 200, answer.text
            accepted += answer.json()["accepted"]
        return accepted

    async def start_billing_run(self) -> str:
        started = await self.api.post(
            "/v1/billing-runs", json={"period": PERIOD}, headers=self.auth
        )
        assert started.status_code == 202, started.text
        return str(started.json()["workflow_id"])

    async def bill_count(self) -> int:
        return int(await self.pool.fetchval("SELECT count(*) FROM bills"))

    async def wait_bills(self, count: int, within: float) -> None:
        async def enough() -> bool:
            return await self.bill_count() >= count

        await until(enough, within, every=0.2)

    async def open_workflows(self) -> list[str]:
        # The webhook dispatcher polls the outbox for as long as a worker runs: never quiet.
        query = (
            f'TaskQueue = "{self.settings.task_queue}" AND ExecutionStatus = "Running" '
            'AND WorkflowType != "WebhookDispatchWorkflow"'
        )
        return [wf.id async for wf in self.temporal.list_workflows(query)]

    async def closed_not_completed(self) -> list[tuple[str, str]]:
        query = (
            f'TaskQueue = "{self.settings.task_queue}" AND ExecutionStatus != "Running" '
            'AND ExecutionStatus != "Completed" AND ExecutionStatus != "ContinuedAsNew"'
        )
        out = []
        async for wf in self.temporal.list_workflows(query):
            out.append((wf.id, wf.status.name if wf.status else "?"))
        return out

    async def wait_quiet(self, within: float) -> float:
        """Until no workflow on this task queue runs; returns the seconds waited.

        A timeout names the workflows still open: a stuck saga is the failure.
        """
        loop = asyncio.get_running_loop()
        began = loop.time()
        deadline = began + within
        while True:
            try:
                still = await self.open_workflows()
            except Exception:  # Temporal itself may be restarting; ask again
                still = ["(temporal unreachable)"]
            if not still:
                return loop.time() - began
            if loop.time() > deadline:
                raise AssertionError(f"{len(still)} workflows still open: {still[:10]}")
            await asyncio.sleep(0.5)


def stack_settings(
    database_url: str, redis_url: str, temporal_address: str, root: Path, **overrides: Any
) -> Settings:
    """Short timings, free ports, a new task queue; the worker's metrics ports off."""
    api_port, sim_port = free_port(), free_port()
    values: dict[str, Any] = {
        "environment": "test",
        "database_url": database_url,
        "redis_url": redis_url,
        "temporal_address": temporal_address,
        "task_queue": f"fault-{uuid.uuid4().hex[:8]}",
        "api_port": api_port,
        "gateway_port": sim_port,
        "gateway_url": f"http://127.0.0.1:{sim_port}",
        "gateway_webhook_url": f"http://127.0.0.1:{api_port}/v1/webhooks/gateway",
        "gateway_db_path": str(root / "gateway.sqlite3"),
        "bank_transfer_settlement_delay": "500ms",
        "bank_transfer_deadline": "60s",
        "dunning_schedule": "1s,1s,1s",
        "billing_run_concurrency": 20,
        "billing_run_page_size": 100,
        # Fixed metrics ports would clash with `make run` and with other test sessions.
        "worker_metrics_port": 0,
        "temporal_sdk_metrics_port": 0,
    } | overrides
    return Settings(**{k: v for k, v in values.items() if k in Settings.model_fields})


@asynccontextmanager
async def service_stack(
    settings: Settings, root: Path, *, api_subprocess: bool = False
) -> AsyncIterator[FaultStack]:
    """Simulator and worker as supervised subprocesses; the API here, or a subprocess too."""
    await asyncio.to_thread(root.mkdir, parents=True, exist_ok=True)
    procs = Processes(root / "logs", env_of(settings))
    api_url = f"http://127.0.0.1:{settings.api_port}"
    procs.start_gateway()
    procs.start_worker()
    pool = await create_pool(settings.database_url, min_size=1, max_size=5)
    temporal = await Client.connect(settings.temporal_address, data_converter=DATA_CONVERTER)
    try:
        async with AsyncExitStack() as stack:
            if api_subprocess:
                procs.start_api(settings.api_port)
                await procs.wait_http(f"{api_url}/healthz")
            else:
                sock = bound_socket_on(settings.api_port)
                await stack.enter_async_context(serve(create_app(settings), sock))
            api = await stack.enter_async_context(httpx.AsyncClient(base_url=api_url, timeout=30))
            sim = await stack.enter_async_context(
                httpx.AsyncClient(base_url=settings.gateway_url, timeout=30)
            )
            await procs.wait_http(f"{settings.gateway_url}/_sim/charges?bill_id=none")
            await procs.wait_worker_polling()
            yield FaultStack(settings, procs, api, sim, pool, temporal, api_url)
    finally:
        await procs.stop()
        await pool.close()


@asynccontextmanager
async def fault_stack(
    servers: FaultServers, root: Path, **overrides: Any
) -> AsyncIterator[FaultStack]:
    """The service over the fault tests' own servers, on a database of its own."""
    await servers.ensure_all()
    database_url = await new_database(servers)
    settings = stack_settings(
        database_url, servers.redis_url, servers.temporal_address, root, **overrides
    )
    async with service_stack(settings, root) as stack:
        yield stack


def bound_socket_on(port: int) -> socket.socket:
    """The API's socket on the port the simulator's webhook URL names."""
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only then (see the harness).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", port))
    return sock
