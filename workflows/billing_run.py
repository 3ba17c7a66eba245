"""BillingRunWorkflow: start every customer's billing cycle for a period.

Pages through customers in id order; each page's cycles start as abandoned
children, at most `billing_run_concurrency` of them running at once, then the run
continues as new with its cursor so its history stays small however many
customers there are. A cycle already started (by the API, or an earlier run)
is skipped: its id makes a second start impossible.

A slot is held from a cycle's start until it completes, or until it says its bill waits
in a charge saga (`cycle_waiting`: dunning takes days, and a waiting execution costs the
worker nothing until its timer fires). So the executions a run keeps busy stay within
the worker's workflow cache however many customers there are, instead of every page's
cycles opening at once.
"""

from __future__ import annotations

import asyncio

from temporalio import workflow
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

with workflow.unsafe.imports_passed_through():
    from activities.config import ConfigActivities
    from activities.customers import CustomerActivities
    from activities.customers_messages import ListCustomersInput
    from billing.periods import period_of, previous_period
    from billing.workflow_ids import billing_cycle_id
    from workflows.billing_cycle import CYCLE_WAITING, BillingCycleWorkflow
    from workflows.billing_cycle_messages import BillingCycleInput
    from workflows.billing_run_messages import BillingRunInput, BillingRunResult, CycleWaiting
    from workflows.options import DB
    from workflows.search_attributes import search_attributes
    from workflows.status import SagaWorkflow


# Issue 15, where the old code went another way (after each start it moved on).
BOUND_RUNNING = "billing-run-bounds-running-cycles"


@workflow.defn
class BillingRunWorkflow(SagaWorkflow):
    def __init__(self) -> None:
        super().__init__()
        self._waiting: set[str] = set()

    @workflow.signal(name=CYCLE_WAITING)
    def cycle_waiting(self, note: CycleWaiting) -> None:
        """A cycle of this run handed its bill to a charge saga: it holds no slot now."""
        self._waiting.add(note.workflow_id)

    @workflow.run
    async def run(self, inp: BillingRunInput) -> BillingRunResult:
        period = inp.period or previous_period(period_of(workflow.now()))
        policy = await workflow.execute_activity_method(ConfigActivities.charge_policy, **DB)
        page = await workflow.execute_activity_method(
            CustomerActivities.list_billable_customers,
            ListCustomersInput(period=period, after=inp.after, limit=policy.billing_run_page_size),
            **DB,
        )
        gate = asyncio.Semaphore(policy.billing_run_concurrency)

        async def start(customer_id: str) -> bool:
            async with gate:
                try:
                    cycle = await workflow.start_child_workflow(
                        BillingCycleWorkflow.run,
                        BillingCycleInput(customer_id=customer_id, period=period),
                        id=billing_cycle_id(customer_id, period),
                        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                        parent_close_policy=workflow.ParentClosePolicy.ABANDON,
                        search_attributes=search_attributes(
                            customer_id=customer_id,
                            tier=page.tiers.get(customer_id),
                            period=period,
                        ),
                        static_summary=f"Bill {customer_id} for {period}",
                    )
                except WorkflowAlreadyStartedError:
                    return False
                if workflow.patched(BOUND_RUNNING):
                    await workflow.wait_condition(lambda: cycle.done() or cycle.id in self._waiting)
                    if cycle.done() and not cycle.cancelled():
                        cycle.exception()  # a failed cycle fails alone, visible in its own history
                return True

        started = await asyncio.gather(*(start(c) for c in page.customer_ids))
        total_started = inp.started + sum(started)
        total_skipped = inp.skipped + len(started) - sum(started)
        details = f"{period}: {total_started} cycles started, {total_skipped} already billed"
        self._step("fanning_out", details)
        if page.next_after is not None:
            workflow.continue_as_new(
                BillingRunInput(
                    period=period,
                    after=page.next_after,
                    started=total_started,
                    skipped=total_skipped,
                )
            )
        self._step("done", details)
        return BillingRunResult(period=period, started=total_started, skipped=total_skipped)
