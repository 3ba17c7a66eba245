"""Upgrade (with compensation), billing cycle, billing run and refund on stand-in activities."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import pytest
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError

from workflows.billing_cycle import BillingCycleWorkflow
from workflows.billing_cycle_messages import BillingCycleInput
from workflows.billing_run import BillingRunWorkflow
from workflows.billing_run_messages import BillingRunInput
from workflows.refund import RefundWorkflow
from workflows.refund_messages import RefundInput
from workflows.upgrade import UpgradeWorkflow
from workflows.upgrade_messages import UpgradeInput

from .standins import Books, outcome, workflow_worker


def wid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def run_sagas(env, task_queue: str, books: Books, *sagas: tuple[Any, Any, str]) -> list[Any]:
    """Run each (workflow run method, input, workflow id) to its end, in order, on one
    worker of stand-ins; their results."""
    async with workflow_worker(env.client, task_queue, books):
        return [
            await env.client.execute_workflow(run, arg, id=workflow_id, task_queue=task_queue)
            for run, arg, workflow_id in sagas
        ]


async def test_upgrade_charges_the_prorated_bill(time_env, task_queue):
    books = Books(script=lambda req, n: outcome("succeeded", req))
    [result] = await run_sagas(
        time_env,
        task_queue,
        books,
        (
            UpgradeWorkflow.run,
            UpgradeInput(
                customer_id=books.customer_id, target_tier="starter", reason="auto_conversion"
            ),
            wid(f"upgrade-{books.customer_id}"),
        ),
    )
    assert (result.outcome, result.from_tier, result.to_tier) == ("upgraded", "free", "starter")
    assert books.tier == "starter"
    assert books.calls[:3] == ["change_tier:starter", "issue_upgrade_bill", "charge"]
    # It took the customer's turn first (SubscriptionWorkflow), as every tier change does.
    assert len(books.turns) == 1
    assert books.turns[0].startswith(f"upgrade-{books.customer_id}")


async def test_failed_upgrade_is_compensated_in_reverse_order(time_env, task_queue):
    books = Books(
        script=lambda req, n: outcome(
            "failed", req, decline_kind="hard", decline_code="card_declined"
        )
    )
    async with workflow_worker(time_env.client, task_queue, books):
        handle = await time_env.client.start_workflow(
            UpgradeWorkflow.run,
            UpgradeInput(customer_id=books.customer_id, target_tier="professional"),
            id=wid(f"upgrade-{books.customer_id}"),
            task_queue=task_queue,
        )
        with pytest.raises(WorkflowFailureError) as failure:
            await handle.result()
        status = await handle.query(UpgradeWorkflow.status)
    assert isinstance(failure.value.cause, ApplicationError)
    assert failure.value.cause.type == "UpgradeChargeFailed"
    # Void the bill first, then revert the tier: the reverse of the forward steps.
    tail = books.calls[books.calls.index("issue_upgrade_bill") + 1 :]
    assert [c for c in tail if not c.startswith(("charge", "record"))] == [
        "void_bill", "change_tier:free", "note:compensated",
    ]  # fmt: skip
    assert books.tier == "free"
    assert books.bill_status == "void"
    assert status.step == "compensated"


async def test_downgrade_issues_no_bill(time_env, task_queue):
    books = Books(script=lambda req, n: outcome("succeeded", req), tier="professional")
    [result] = await run_sagas(
        time_env,
        task_queue,
        books,
        (
            UpgradeWorkflow.run,
            UpgradeInput(customer_id=books.customer_id, target_tier="starter"),
            wid(f"upgrade-{books.customer_id}"),
        ),
    )
    assert result.outcome == "downgraded"
    assert books.calls == ["change_tier:starter"]


async def test_billing_cycle_bills_then_collects(time_env, task_queue):
    books = Books(script=lambda req, n: outcome("succeeded", req))
    [result] = await run_sagas(
        time_env,
        task_queue,
        books,
        (
            BillingCycleWorkflow.run,
            BillingCycleInput(customer_id=books.customer_id, period="2026-10"),
            wid(f"bill-{books.customer_id}-2026-10"),
        ),
    )
    assert (result.bill_id, result.outcome) == (f"bill_{books.customer_id}_{books.suffix}", "paid")


async def test_billing_run_pages_with_continue_as_new(own_time_env, task_queue):
    time_env = own_time_env  # the children it abandons stop the server skipping time
    books = Books(script=lambda req, n: outcome("succeeded", req))
    suffix = uuid.uuid4().hex[:6]
    books.customers = [f"cus_{suffix}_{i}" for i in range(7)]  # page size 3: three runs
    result, again = await run_sagas(
        time_env,
        task_queue,
        books,
        (BillingRunWorkflow.run, BillingRunInput(period="2026-10"), wid("billing-run-2026-10")),
        (BillingRunWorkflow.run, BillingRunInput(period="2026-10"), wid("billing-run-2026-10")),
    )
    assert (result.started, result.skipped) == (7, 0)
    # The second run finds every cycle already started: a period is billed once.
    assert (again.started, again.skipped) == (0, 7)


async def test_refund_reserves_refunds_and_records(time_env, task_queue):
    books = Books(script=lambda req, n: outcome("succeeded", req))
    [result] = await run_sagas(
        time_env,
        task_queue,
        books,
        (
            RefundWorkflow.run,
            RefundInput(
                bill_id="bill_1", amount=Decimal("4.00"), reason="goodwill", request_id="r1"
            ),
            wid("refund-bill_1"),
        ),
    )
    assert (result.outcome, result.amount) == ("refunded", Decimal("4.00"))
    assert books.calls == ["reserve_refund", "gateway_refund", "complete_refund"]


async def test_refund_ids_come_from_the_request_not_the_workflow_id(time_env, task_queue):
    # Old code (9cf078d) cut the refund id from the workflow id's last dash: `order-1` on
    # one bill and `return-1` on another were both `rf_1`, and the second was the first.
    books = Books(script=lambda req, n: outcome("succeeded", req))
    bills = [f"bill_a_{books.suffix}", f"bill_b_{books.suffix}"]
    results = await run_sagas(
        time_env,
        task_queue,
        books,
        *(
            (
                RefundWorkflow.run,
                RefundInput(bill_id=bill, reason="return", request_id=key),
                f"refund-{bill}-{key}",
            )
            for bill, key in zip(bills, ["order-1", "return-1"], strict=True)
        ),
    )
    assert [r.refund_id for r in results] == [
        f"rf_{bills[0]}_order-1",
        f"rf_{bills[1]}_return-1",
    ]
    assert books.calls.count("gateway_refund") == 2
