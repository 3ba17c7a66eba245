"""Billing sagas against the floor: the same activities doing nothing.

Every measurement starts its workflows from a client (or one run workflow) and stops its
clock on the same signal for the product and the floor: Temporal's visibility counting
every cycle of the period completed, polled at the same interval. Only then, off the
clock, the product must also show every bill paid in Postgres, so a fast wrong answer
cannot pass. Each repetition bills a new period, so nothing is skipped.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import asyncpg
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy

from bench.floor import FloorCycleWorkflow, FloorRunWorkflow, FloorShapedCycleWorkflow
from bench.floor_io import FloorInput, FloorRunInput, FloorShape
from bench.stack import FLOOR_TASK_QUEUE
from billing.workflow_ids import billing_cycle_id, billing_run_id
from config.settings import Settings
from workflows.billing_cycle_messages import BillingCycleInput
from workflows.billing_run_messages import BillingRunInput
from workflows.search_attributes import search_attributes

STARTS_IN_FLIGHT = 20  # client starts, 20 at a time; a month close paces itself
# How often completion is polled: often enough for the figure, rarely enough that the
# polling itself (a visibility count, a COUNT over the bills) is not a load of its own.
POLL_S = 0.25
MONTH_CLOSE_POLL_S = 1.0
LOCAL_ACTIVITY_MARKER = "core_local_activity"  # the SDK core's marker for a local activity

PAID_BILLS = """
SELECT count(*) FROM bills b
WHERE b.period = $1::text AND b.kind = 'cycle'
  AND EXISTS (SELECT 1 FROM ledger_entries l WHERE l.bill_id = b.id AND l.kind = 'captured')"""


async def wait_for(
    probe: Callable[[], Awaitable[int]], target: int, timeout_s: float, poll_s: float = POLL_S
) -> None:
    """Poll until `probe()` reaches `target`; a TimeoutError names how far it got."""
    deadline = time.monotonic() + timeout_s
    while (seen := await probe()) < target:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{seen} of {target} done after {timeout_s:.0f}s")
        await asyncio.sleep(poll_s)


async def paid_bills(pool: asyncpg.Pool, period: str) -> int:
    count: int = await pool.fetchval(PAID_BILLS, period)
    return count


async def completed(client: Client, workflow_type: str, period: str) -> int:
    query = (
        f'WorkflowType = "{workflow_type}" AND ExecutionStatus = "Completed" '
        f'AND BillingPeriod = "{period}"'
    )
    return (await client.count_workflows(query)).count


async def _start_all(starts: list[Callable[[], Awaitable[object]]]) -> None:
    gate = asyncio.Semaphore(STARTS_IN_FLIGHT)

    async def one(start: Callable[[], Awaitable[object]]) -> None:
        async with gate:
            await start()

    await asyncio.gather(*(one(s) for s in starts))


async def cycles(
    client: Client, pool: asyncpg.Pool, settings: Settings, customers: list[str], period: str,
    timeout_s: float,
) -> float:  # fmt: skip
    """Seconds from the first start until every cycle is closed and every bill paid."""

    def start(cid: str) -> Callable[[], Awaitable[object]]:
        # As POST /v1/customers/{id}/billing-cycles starts it (api/routes/billing.py).
        return lambda: client.start_workflow(
            "BillingCycleWorkflow",
            BillingCycleInput(customer_id=cid, period=period),
            id=billing_cycle_id(cid, period),
            task_queue=settings.task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            search_attributes=search_attributes(customer_id=cid, tier="starter", period=period),
            static_summary=f"Bill {cid} for {period}",
        )

    began = time.perf_counter()
    await _start_all([start(c) for c in customers])
    await wait_for(lambda: completed(client, "BillingCycleWorkflow", period), len(customers),
                   timeout_s)  # fmt: skip
    elapsed = time.perf_counter() - began
    await wait_for(lambda: paid_bills(pool, period), len(customers), 10.0)
    return elapsed


async def shape_of(client: Client, workflow_id: str, run_id: str | None = None) -> FloorShape:
    """What an execution scheduled, read from its history, its children's counted alike."""
    history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
    activities = local = 0
    children: list[FloorShape] = []
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            activities += 1
        elif event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED:
            marker = event.marker_recorded_event_attributes.marker_name
            local += 1 if marker == LOCAL_ACTIVITY_MARKER else 0
        elif event.event_type == EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_STARTED:
            child = event.child_workflow_execution_started_event_attributes.workflow_execution
            children.append(await shape_of(client, child.workflow_id, child.run_id))
    return FloorShape(activities=activities, local_activities=local, children=children)


async def floor_cycles(
    client: Client, shape: FloorShape, count: int, tag: str, timeout_s: float, *,
    shaped: bool = False,
) -> float:  # fmt: skip
    """Seconds from the first start until `count` floor cycles have completed."""
    run = FloorShapedCycleWorkflow.run if shaped else FloorCycleWorkflow.run
    name = "BenchFloorShapedCycle" if shaped else "BenchFloorCycle"

    def start(key: str) -> Callable[[], Awaitable[object]]:
        return lambda: client.start_workflow(
            run,
            FloorInput(key=key, tag=tag, shape=shape),
            id=f"floor-{tag}-{key}",
            task_queue=FLOOR_TASK_QUEUE,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            search_attributes=search_attributes(customer_id=key, tier="starter", period=tag),
            static_summary=f"Floor {key} for {tag}",
        )

    began = time.perf_counter()
    await _start_all([start(f"k{n:06d}") for n in range(count)])
    await wait_for(lambda: completed(client, name, tag), count, timeout_s)
    return time.perf_counter() - began


async def month_close(
    client: Client, pool: asyncpg.Pool, settings: Settings, count: int, period: str,
    timeout_s: float,
) -> float:  # fmt: skip
    """Seconds from starting the billing run until visibility counts all `count` cycles
    completed; then, off the clock, every bill must be paid."""
    began = time.perf_counter()
    # As POST /v1/billing-runs starts it.
    await client.start_workflow(
        "BillingRunWorkflow",
        BillingRunInput(period=period),
        id=billing_run_id(period),
        task_queue=settings.task_queue,
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
        search_attributes=search_attributes(period=period),
        static_summary=f"Bill every customer for {period}",
    )
    await wait_for(
        lambda: completed(client, "BillingCycleWorkflow", period), count, timeout_s,
        MONTH_CLOSE_POLL_S,
    )  # fmt: skip
    elapsed = time.perf_counter() - began
    await wait_for(lambda: paid_bills(pool, period), count, 10.0)
    return elapsed


async def floor_month_close(
    client: Client, settings: Settings, shape: FloorShape, count: int, tag: str,
    timeout_s: float,
) -> float:  # fmt: skip
    """Seconds from starting the floor run until `count` floor cycles have completed."""
    began = time.perf_counter()
    await client.start_workflow(
        FloorRunWorkflow.run,
        FloorRunInput(
            tag=tag,
            shape=shape,
            total=count,
            page_size=settings.billing_run_page_size,
            concurrency=settings.billing_run_concurrency,
        ),
        id=f"floor-run-{tag}",
        task_queue=FLOOR_TASK_QUEUE,
        search_attributes=search_attributes(period=tag),
    )
    await wait_for(
        lambda: completed(client, "BenchFloorCycle", tag), count, timeout_s, MONTH_CLOSE_POLL_S
    )
    return time.perf_counter() - began
