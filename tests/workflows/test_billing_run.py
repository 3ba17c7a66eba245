"""The billing run bounds running cycles, not starts in flight (issue 15).

Before, a slot was held only while a start was in flight: every page's cycles were open at
once, more than the worker's workflow cache on a large month. Now a slot is held until the
cycle completes or says that its bill waits in a charge saga.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from temporalio.api.enums.v1 import EventType

from activities.gateway_messages import AttemptChargeInput
from workflows.billing_run import BillingRunWorkflow
from workflows.billing_run_messages import BillingRunInput

from .standins import Books, outcome, workflow_worker


async def test_at_most_the_runs_concurrency_of_cycles_run_at_once(own_time_env, task_queue):
    time_env = own_time_env  # the children it abandons stop the server skipping time
    books = Books(script=lambda req, n: outcome("succeeded", req), pause=0.3)
    books.policy = books.policy.model_copy(
        update={"billing_run_concurrency": 2, "billing_run_page_size": 10}
    )
    suffix = uuid.uuid4().hex[:6]
    books.customers = [f"cus_{suffix}_{i}" for i in range(6)]
    async with workflow_worker(time_env.client, task_queue, books):
        result = await time_env.client.execute_workflow(
            BillingRunWorkflow.run,
            BillingRunInput(period="2026-10"),
            id=f"billing-run-2026-10-{suffix}",
            task_queue=task_queue,
        )
    assert (result.started, result.skipped) == (6, 0)
    assert books.calls.count("open_cycle:" + books.customers[-1]) == 1
    # Before: a slot was free again once the start was acknowledged, so all six worked
    # at once. (The stand-ins keep one bill: the first capture pays it for every cycle.)
    assert books.most_open == 2


async def test_a_cycle_whose_bill_waits_gives_its_slot_back(own_time_env, task_queue):
    time_env = own_time_env
    suffix = uuid.uuid4().hex[:6]
    declined = f"cus_{suffix}_0"

    def script(req: AttemptChargeInput, n: int):
        return outcome("failed" if declined in req.bill_id else "succeeded", req)

    books = Books(script=script)
    books.policy = books.policy.model_copy(
        update={
            "billing_run_concurrency": 1,
            "billing_run_page_size": 10,
            # Dunning for longer than the test: the declined cycle is still open at the end.
            "dunning_delays": [timedelta(days=30)],
        }
    )
    books.customers = [declined, f"cus_{suffix}_1", f"cus_{suffix}_2"]
    run_id = f"billing-run-2026-10-{suffix}"
    async with workflow_worker(time_env.client, task_queue, books):
        result = await time_env.client.execute_workflow(
            BillingRunWorkflow.run, BillingRunInput(period="2026-10"), id=run_id,
            task_queue=task_queue,
        )  # fmt: skip
        signals = [
            event.workflow_execution_signaled_event_attributes.signal_name
            async for event in time_env.client.get_workflow_handle(run_id).fetch_history_events()
            if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
        ]
    # With one slot, the other two were billed while the first customer's bill waits.
    assert (result.started, result.skipped) == (3, 0)
    assert signals == ["cycle_waiting"]
    # In start order: the first bill declined (it waits for dunning), then the next paid.
    assert books.records[:2] == ["record:failed", "record:succeeded"]
    assert [c for c in books.calls if c.startswith("open_cycle:")] == [
        f"open_cycle:{c}" for c in books.customers
    ]
