"""The measured service, started afresh: real servers from wheels, then the API, the gateway
simulator and the worker as subprocesses, so the load generator never shares their CPU time
slices inside one Python process.

Everything listens on 127.0.0.1 on free ports and lives in one temporary folder.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client
from temporalio.converter import DataConverter

from config.settings import Settings
from devstack.ports import HOST, free_port
from devstack.postgres import PostgresServer, start_postgres
from devstack.process import ManagedProcess
from devstack.redis_server import RedisServer, start_redis
from devstack.temporal_server import TemporalServer, start_temporal
from observability import codec
from store.migrate import migrate_url

REPO_ROOT = Path(__file__).resolve().parent.parent
TASK_QUEUE = "bench"
FLOOR_TASK_QUEUE = "bench-floor"
_READY_S = 60.0


@dataclass
class Stack:
    """The running service; `stop()` ends every child and server it started."""

    root: Path
    servers: list[PostgresServer | RedisServer | TemporalServer]
    env: dict[str, str]
    settings: Settings
    api_url: str
    gateway_url: str
    temporal_db: Path | None = None  # None: the Temporal dev server keeps its state in memory
    children: dict[str, ManagedProcess] = field(default_factory=dict)
    commands: dict[str, tuple[list[str], dict[str, str]]] = field(default_factory=dict)
    temporal_starts: int = 1

    @property
    def temporal(self) -> TemporalServer:
        server = self.servers[2]
        assert isinstance(server, TemporalServer)
        return server

    def pid(self, name: str) -> int:
        return self.children[name].pid

    def start_child(self, name: str, argv: list[str], extra: Mapping[str, str] = {}) -> int:
        """Start (or start again) one child; returns its pid."""
        old = self.children.pop(name, None)
        if old is not None:
            old.stop()
        log = self.root / "logs" / f"{name}.log"
        env = {**self.env, **extra}
        self.children[name] = ManagedProcess(name, argv, log, env=env, cwd=REPO_ROOT)
        self.commands[name] = (argv, dict(extra))
        return self.children[name].pid

    def stop_child(self, name: str) -> None:
        proc = self.children.pop(name, None)
        if proc is not None:
            proc.stop()

    def stop(self) -> None:
        for name in list(self.children):
            self.stop_child(name)
        for server in reversed(self.servers):
            server.stop()


def _env(values: Mapping[str, str]) -> dict[str, str]:
    # Inherit PATH and friends; every setting the service reads is named explicitly.
    return {**os.environ, "PYTHONUNBUFFERED": "1", **values}


async def start_servers(root: Path, *, temporal_in_memory: bool) -> Stack:
    """Postgres, Redis and Temporal as `make run` runs them (durable), on free ports."""
    logs = root / "logs"
    temporal_db = None if temporal_in_memory else root / "temporal.db"
    jobs = (
        asyncio.to_thread(start_postgres, root / "postgres", free_port(), logs / "postgres.log"),
        asyncio.to_thread(start_redis, free_port(), root / "redis", logs / "redis.log"),
        asyncio.to_thread(
            start_temporal,
            free_port(),
            logs / "temporal.log",
            db_file=temporal_db,
        ),
    )
    results = await asyncio.gather(*jobs, return_exceptions=True)
    started = [r for r in results if not isinstance(r, BaseException)]
    failed = [r for r in results if isinstance(r, BaseException)]
    if failed:
        for server in started:
            server.stop()
        raise failed[0]
    pg, redis, temporal = started
    assert isinstance(pg, PostgresServer)
    assert isinstance(redis, RedisServer)
    assert isinstance(temporal, TemporalServer)
    await migrate_url(pg.url)
    api_port, gateway_port = free_port(), free_port()
    api_url, gateway_url = f"http://{HOST}:{api_port}", f"http://{HOST}:{gateway_port}"
    values = {
        "ENVIRONMENT": "dev",
        "DATABASE_URL": pg.url,
        "REDIS_URL": redis.url,
        "TEMPORAL_ADDRESS": temporal.address,
        "TEMPORAL_NAMESPACE": "default",
        "TASK_QUEUE": TASK_QUEUE,
        "API_HOST": HOST,
        "API_PORT": str(api_port),
        "GATEWAY_URL": gateway_url,
        "GATEWAY_HOST": HOST,
        "GATEWAY_PORT": str(gateway_port),
        "GATEWAY_WEBHOOK_URL": f"{api_url}/v1/webhooks/gateway",
        "GATEWAY_DB_PATH": str(root / "gateway.sqlite3"),
        "LOG_LEVEL": "WARNING",
        # No metrics listeners: fixed ports would collide with a `make run` on this machine.
        "WORKER_METRICS_PORT": "0",
        "TEMPORAL_SDK_METRICS_PORT": "0",
    }
    settings = Settings(
        database_url=pg.url,
        redis_url=redis.url,
        temporal_address=temporal.address,
        task_queue=TASK_QUEUE,
        gateway_url=gateway_url,
        gateway_db_path=str(root / "gateway.sqlite3"),
    )
    return Stack(
        root, [pg, redis, temporal], _env(values), settings, api_url, gateway_url, temporal_db
    )


def api_argv(workers: int) -> list[str]:
    """`make run`'s command line, without the per-request access log."""
    argv = [sys.executable, "-m", "uvicorn", "api.app:create_app", "--factory"]
    argv += ["--no-access-log", "--log-level", "warning"]
    argv += ["--workers", str(workers)] if workers > 1 else []
    return argv


async def start_service(stack: Stack, *, api_workers: int = 1) -> None:
    """The API, the gateway simulator and the worker (`python worker.py`, as `make run`)."""
    host, port = stack.env["API_HOST"], stack.env["API_PORT"]
    stack.start_child("api", [*api_argv(api_workers), "--host", host, "--port", port])
    stack.start_child("gateway", [sys.executable, "-m", "gateway_sim"])
    stack.start_child("worker", [sys.executable, "worker.py"])
    await wait_http(f"{stack.api_url}/healthz", stack)
    await wait_http(f"{stack.gateway_url}/_sim/charges?bill_id=none", stack)
    client = await connect(stack)
    await wait_pollers(client, TASK_QUEUE, stack)


# Every process that holds a Temporal connection, and the task queue each one polls.
_TEMPORAL_USERS = {"api": None, "worker": TASK_QUEUE, "floor worker": FLOOR_TASK_QUEUE}


async def fresh_temporal(stack: Stack) -> Client:
    """An empty Temporal server on the same port, and every process that talks to Temporal
    started again: a run on it pays for no history another run left. Returns a client."""
    running = [name for name in _TEMPORAL_USERS if name in stack.children]
    for name in running:
        stack.stop_child(name)
    old = stack.temporal
    old.stop()
    stack.temporal_starts += 1
    n = stack.temporal_starts
    db = None if stack.temporal_db is None else stack.temporal_db.with_name(f"temporal-{n}.db")
    log = stack.root / "logs" / f"temporal-{n}.log"
    stack.servers[2] = await asyncio.to_thread(start_temporal, old.port, log, db_file=db)
    for name in running:
        stack.start_child(name, *stack.commands[name])
    client = await connect(stack)
    if "api" in running:
        await wait_http(f"{stack.api_url}/healthz", stack)
    for name in running:
        if (queue := _TEMPORAL_USERS[name]) is not None:
            await wait_pollers(client, queue, stack)
    return client


def data_converter(settings: Settings) -> DataConverter:
    """The worker's converter, so the floor and the bench's starts pay what the sagas pay."""
    return codec.data_converter(settings)


async def connect(stack: Stack) -> Client:
    return await Client.connect(
        stack.settings.temporal_address,
        namespace=stack.settings.temporal_namespace,
        data_converter=data_converter(stack.settings),
    )


def _check_children(stack: Stack) -> None:
    for name, proc in stack.children.items():
        if not proc.running():
            tail = (stack.root / "logs" / f"{name}.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{name} exited while starting:\n{tail}")


async def wait_http(url: str, stack: Stack) -> None:
    async with asyncio.timeout(_READY_S), httpx.AsyncClient(timeout=2.0) as client:
        while True:
            _check_children(stack)
            try:
                if (await client.get(url)).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)


async def wait_pollers(client: Client, task_queue: str, stack: Stack) -> None:
    """Until a worker polls `task_queue` for workflow tasks."""
    request = DescribeTaskQueueRequest(
        namespace=client.namespace,
        task_queue=TaskQueue(name=task_queue),
        task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
    )
    async with asyncio.timeout(_READY_S):
        while True:
            _check_children(stack)
            described = await client.workflow_service.describe_task_queue(request)
            if described.pollers:
                return
            await asyncio.sleep(0.1)
