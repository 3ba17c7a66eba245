"""The floor: workflows whose activities do nothing, run by the same server and worker settings.

A billing cycle that is paid at once runs five activities (count them in
tests/replay/histories/billing_cycle_paid_at_once.json: `issue_cycle_bill` in the cycle;
`get_bill`, `charge_policy`, `charge`, `record_attempt` in its child ChargeWorkflow).
`FloorCycleWorkflow` runs five no-op activities in one workflow: the least Temporal work
that a five-step saga can cost. `FloorShapedCycleWorkflow` keeps the cycle's shape too (one
activity, then a child with four), to tell the cost of the child apart from the cost of
the activities' real work. `FloorRunWorkflow` fans out like BillingRunWorkflow: pages,
at most `concurrency` starts in flight, continue-as-new after each page.
"""

from __future__ import annotations

import asyncio

from temporalio import workflow
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

with workflow.unsafe.imports_passed_through():
    from bench.floor_io import (
        CHARGE_ACTIVITIES,
        CYCLE_ACTIVITIES,
        FloorInput,
        FloorPageInput,
        FloorResult,
        FloorRunInput,
        FloorStep,
        floor_page,
        noop,
    )
    from workflows.options import DB
    from workflows.search_attributes import search_attributes


async def _steps(key: str, count: int, first: int = 0) -> None:
    for n in range(first, first + count):
        await workflow.execute_activity(noop, FloorStep(key=key, step=n), **DB)


@workflow.defn(name="BenchFloorCycle")
class FloorCycleWorkflow:
    @workflow.run
    async def run(self, inp: FloorInput) -> FloorResult:
        await _steps(inp.key, CYCLE_ACTIVITIES)
        return FloorResult(key=inp.key, steps=CYCLE_ACTIVITIES)


@workflow.defn(name="BenchFloorCharge")
class FloorChargeWorkflow:
    @workflow.run
    async def run(self, inp: FloorInput) -> FloorResult:
        await _steps(inp.key, CHARGE_ACTIVITIES, first=1)
        return FloorResult(key=inp.key, steps=CHARGE_ACTIVITIES)


@workflow.defn(name="BenchFloorShapedCycle")
class FloorShapedCycleWorkflow:
    @workflow.run
    async def run(self, inp: FloorInput) -> FloorResult:
        await _steps(inp.key, CYCLE_ACTIVITIES - CHARGE_ACTIVITIES)
        await workflow.execute_child_workflow(
            FloorChargeWorkflow.run,
            inp,
            id=f"{workflow.info().workflow_id}-charge",
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        )
        return FloorResult(key=inp.key, steps=CYCLE_ACTIVITIES)


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
            async with gate:
                try:
                    await workflow.start_child_workflow(
                        FloorCycleWorkflow.run,
                        FloorInput(key=key, tag=inp.tag),
                        id=f"floor-{inp.tag}-{key}",
                        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                        parent_close_policy=workflow.ParentClosePolicy.ABANDON,
                        search_attributes=search_attributes(customer_id=key, period=inp.tag),
                        static_summary=f"Floor {key} for {inp.tag}",
                    )
                except WorkflowAlreadyStartedError:
                    return False
                return True

        started = inp.started + sum(await asyncio.gather(*(start(k) for k in page.keys)))
        if page.next_after is not None:
            workflow.continue_as_new(
                inp.model_copy(update={"after": page.next_after, "started": started})
            )
        return started


WORKFLOWS = [FloorCycleWorkflow, FloorChargeWorkflow, FloorShapedCycleWorkflow, FloorRunWorkflow]
