"""The floor: workflows whose activities do nothing, run by the same server and worker settings.

The floor's shape is counted from the product, not written down: before the measured
rounds the benchmark bills one customer and reads that cycle's history and its children's
(bench/sagas.py, `shape_of`): how many activities and local activities each execution
scheduled and which children it started. `FloorCycleWorkflow` runs all of those activities
as no-ops in one execution: the least Temporal work that the saga's steps can cost.
`FloorShapedCycleWorkflow` keeps the cycle's shape too (its own activities, then each child
with its own), to tell the cost of the executions apart from the cost of the activities'
real work. `FloorRunWorkflow` fans out like BillingRunWorkflow: pages, at most
`concurrency` cycles running at once (as the billing run bounds them), continue-as-new
after each page.
"""

from __future__ import annotations

import asyncio

from temporalio import workflow
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

with workflow.unsafe.imports_passed_through():
    from bench.floor_io import (
        FloorInput,
        FloorPageInput,
        FloorResult,
        FloorRunInput,
        FloorShape,
        FloorStep,
        floor_page,
        noop,
    )
    from workflows.options import DB
    from workflows.search_attributes import search_attributes


async def _steps(key: str, shape: FloorShape) -> int:
    """The shape's activities, then its local activities, one after another as a saga's."""
    for n in range(shape.activities):
        await workflow.execute_activity(noop, FloorStep(key=key, step=n), **DB)
    for n in range(shape.local_activities):
        await workflow.execute_local_activity(
            noop,
            FloorStep(key=key, step=shape.activities + n),
            start_to_close_timeout=DB["start_to_close_timeout"],
            retry_policy=DB["retry_policy"],
        )
    return shape.activities + shape.local_activities


async def _tree(inp: FloorInput) -> FloorResult:
    """The shape's own steps, then each child in turn, awaited as the cycle awaits its charge."""
    steps = await _steps(inp.key, inp.shape)
    for n, child in enumerate(inp.shape.children):
        done = await workflow.execute_child_workflow(
            FloorChildWorkflow.run,
            inp.model_copy(update={"shape": child}),
            id=f"{workflow.info().workflow_id}-{n}",
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        )
        steps += done.steps
    return FloorResult(key=inp.key, steps=steps)


@workflow.defn(name="BenchFloorCycle")
class FloorCycleWorkflow:
    @workflow.run
    async def run(self, inp: FloorInput) -> FloorResult:
        steps = await _steps(inp.key, inp.shape.flat())
        return FloorResult(key=inp.key, steps=steps)


@workflow.defn(name="BenchFloorChild")
class FloorChildWorkflow:
    @workflow.run
    async def run(self, inp: FloorInput) -> FloorResult:
        return await _tree(inp)


@workflow.defn(name="BenchFloorShapedCycle")
class FloorShapedCycleWorkflow:
    @workflow.run
    async def run(self, inp: FloorInput) -> FloorResult:
        return await _tree(inp)


@workflow.defn(name="BenchFloorRun")
class FloorRunWorkflow:
    @workflow.run
    async def run(self, inp: FloorRunInput) -> int:
        # Two round trips per page, as the billing run has (charge_policy, then the page).
        await workflow.execute_activity(noop, FloorStep(key=inp.tag, step=0), **DB)
        page = await workflow.execute_activity(
            floor_page, FloorPageInput(after=inp.after, limit=inp.page_size, total=inp.total), **DB
        )
        gate = asyncio.Semaphore(inp.concurrency)

        async def start(key: str) -> bool:
            # As the billing run: a slot is held until the cycle completes (its floor
            # cycles never wait for a payment), so at most `concurrency` run at once.
            async with gate:
                try:
                    cycle = await workflow.start_child_workflow(
                        FloorCycleWorkflow.run,
                        FloorInput(key=key, tag=inp.tag, shape=inp.shape),
                        id=f"floor-{inp.tag}-{key}",
                        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                        parent_close_policy=workflow.ParentClosePolicy.ABANDON,
                        search_attributes=search_attributes(customer_id=key, period=inp.tag),
                        static_summary=f"Floor {key} for {inp.tag}",
                    )
                except WorkflowAlreadyStartedError:
                    return False
                await workflow.wait_condition(cycle.done)
                return True

        started = inp.started + sum(await asyncio.gather(*(start(k) for k in page.keys)))
        if page.next_after is not None:
            workflow.continue_as_new(
                inp.model_copy(update={"after": page.next_after, "started": started})
            )
        return started


WORKFLOWS = [FloorCycleWorkflow, FloorChildWorkflow, FloorShapedCycleWorkflow, FloorRunWorkflow]
