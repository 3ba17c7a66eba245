"""What `make run` tells a person once the stack is up, and the schedules it sets up after."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import httpx
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

from config.settings import Settings
from devstack.servers import Dependencies
from observability.codec import data_converter

Echo = Callable[[str], None]
_HEALTH_WAIT_S = 90.0
_WORKER_WAIT_S = 60.0
_QUEUE_TYPES = (TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW, TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY)


async def wait_healthy(url: str) -> str:
    """Poll /healthz until 200 (at most 90s); returns "ok" or the last answer, for the banner."""
    deadline = time.monotonic() + _HEALTH_WAIT_S
    last = "no answer"
    async with httpx.AsyncClient(timeout=3.0) as client:
        while time.monotonic() < deadline:
            try:
                response = await client.get(url)
            except httpx.HTTPError as exc:
                last = f"no answer ({type(exc).__name__})"
            else:
                if response.status_code == 200:
                    return "ok"
                last = f"HTTP {response.status_code} {response.text}"
            await asyncio.sleep(0.25)
    return last


def banner(
    echo: Echo,
    settings: Settings,
    deps: Dependencies,
    gateway_url: str | None,
    health: str,
    elapsed: float,
) -> None:
    api = f"http://127.0.0.1:{settings.api_port}"
    rows = [
        ("API docs", f"{api}/docs"),
        ("Health", f"{api}/healthz ({health})"),
        ("Temporal Web UI", deps.temporal_ui_url or "served by your Temporal server"),
        (
            "Gateway simulator",
            f"{gateway_url}/docs"
            if gateway_url
            else "not started (gateway_sim/__main__.py is missing)",
        ),
        ("Temporal", f"{deps.temporal_address}, namespace {settings.temporal_namespace}"),
        ("Postgres", deps.database_url),
        ("Redis", deps.redis_url),
        ("Service key", f"{settings.billing_api_key.get_secret_value()} (Bearer token)"),
        ("Logs", ".devstack/logs/"),
    ]
    line = "=" * 72
    echo(line)
    echo(f" Billing sagas dev stack is up in {elapsed:.1f}s")
    for label, value in rows:
        echo(f"   {label:<18} {value}")
    echo(" Ctrl-C stops everything.")
    echo(line)


async def worker_polls(client: Client, settings: Settings, wait_s: float = _WORKER_WAIT_S) -> bool:
    """True once some worker polls the task queue (checked for up to `wait_s` seconds)."""
    deadline = time.monotonic() + wait_s
    while True:
        for kind in _QUEUE_TYPES:
            request = DescribeTaskQueueRequest(
                namespace=settings.temporal_namespace,
                task_queue=TaskQueue(name=settings.task_queue),
                task_queue_type=kind,
            )
            if (await client.workflow_service.describe_task_queue(request)).pollers:
                return True
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(1.0)


async def schedules(echo: Echo, settings: Settings, deps: Dependencies) -> None:
    """After the worker polls, create the Temporal Schedules."""
    from devstack.schedules import ensure_schedules  # imports the workflows: only when needed

    try:
        client = await Client.connect(
            deps.temporal_address,
            namespace=settings.temporal_namespace,
            data_converter=data_converter(settings),
        )
        if not await worker_polls(client, settings):
            queue = settings.task_queue
            echo(f"[devstack] no worker polls {queue!r} yet; creating schedules anyway")
        await ensure_schedules(client, settings)
    except Exception as exc:  # the stack keeps running; the line says what failed
        echo(f"[devstack] schedules not created: {type(exc).__name__}: {exc}")
        return
    echo("[devstack] schedules are in place")
