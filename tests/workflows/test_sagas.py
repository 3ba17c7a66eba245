"""Upgrade (with compensation), billing cycle, billing run and refund on stand-in activities."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

from billing.messages import BillingCycleInput, BillingRunInput, RefundInput, UpgradeInput
from worker import WORKFLOWS
from workflows.billing_cycle import BillingCycleWorkflow
from workflows.billing_run import BillingRunWorkflow
from workflows.refund import RefundWorkflow
from workflows.upgrade import UpgradeWorkflow

from .standins import Books, outcome


def wid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def test_upgrade_charges_the_prorated_bill(time_env, task_queue):
    books = Books(script=lambda req, n: outcome("succeeded", req))
    async with Worker(
        time_env.client, task_queue=task_queue, workflows=WORKFLOWS, activities=books.activities()
    ):
        result = await time_env.client.execute_workflow(
            UpgradeWorkflow.run,
            UpgradeInput(customer_id="cus_1", target_tier="starter", reason="auto_conversion"),
            id=wid("upgrade-cus_1"),
            task_queue=task_queue,
        )
    assert (result.outcome, result.from_tier, result.to_tier) == ("upgraded", "free", "starter")
    assert books.tier == "starter"
    assert books.calls[:3] == ["change_tier:starter", "issue_upgrade_bill", "charge"]


async def test_failed_upgrade_is_compensated_in_reverse_order(time_env, task_queue):
    books = Books(
        script=lambda req, n: outcome(
            "failed", req, decline_kind="hard", decline_code="card_declined"
        )
    )
    async with Worker(
        time_env.client, task_queue=task_queue, workflows=WORKFLOWS, activities=books.activities()
    ):
        handle = await time_env.client.start_workflow(
            UpgradeWorkflow.run,
            UpgradeInput(customer_id="cus_1", target_tier="professional"),
            id=wid("upgrade-cus_1"),
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
    async with Worker(
        time_env.client, task_queue=task_queue, workflows=WORKFLOWS, activities=books.activities()
    ):
        result = await time_env.client.execute_workflow(
            UpgradeWorkflow.run,
            UpgradeInput(customer_id="cus_1", target_tier="starter"),
            id=wid("upgrade-cus_1"),
            task_queue=task_queue,
        )
    assert result.outcome == "downgraded"
    assert books.calls == ["change_tier:starter"]


async def test_billing_cycle_bills_then_collects(time_env, task_queue):
    books = Books(script=lambda req, n: outcome("succeeded", req))
    async with Worker(
        time_env.client, task_queue=task_queue, workflows=WORKFLOWS, activities=books.activities()
    ):
        result = await time_env.client.execute_workflow(
            BillingCycleWorkflow.run,
            BillingCycleInput(customer_id="cus_1", period="2026-10"),
            id=wid("bill-cus_1-2026-10"),
            task_queue=task_queue,
        )
    assert (result.bill_id, result.outcome) == (f"bill_cus_1_{books.suffix}", "paid")


async def test_billing_run_pages_with_continue_as_new(time_env, task_queue):
    books = Books(script=lambda req, n: outcome("succeeded", req))
    suffix = uuid.uuid4().hex[:6]
    books.customers = [f"cus_{suffix}_{i}" for i in range(7)]  # page size 3: three runs
    async with Worker(
        time_env.client, task_queue=task_queue, workflows=WORKFLOWS, activities=books.activities()
    ):
        result = await time_env.client.execute_workflow(
            BillingRunWorkflow.run,
            BillingRunInput(period="2026-10"),
            id=wid("billing-run-2026-10"),
            task_queue=task_queue,
        )
        assert (result.started, result.skipped) == (7, 0)
        again = await time_env.client.execute_workflow(
            BillingRunWorkflow.run,
            BillingRunInput(period="2026-10"),
            id=wid("billing-run-2026-10"),
            task_queue=task_queue,
        )
    # The second run finds every cycle already started: a period is billed once.
    assert (again.started, again.skipped) == (0, 7)


async def test_refund_reserves_refunds_and_records(time_env, task_queue):
    books = Books(script=lambda req, n: outcome("succeeded", req))
    async with Worker(
        time_env.client, task_queue=task_queue, workflows=WORKFLOWS, activities=books.activities()
    ):
        result = await time_env.client.execute_workflow(
            RefundWorkflow.run,
            RefundInput(
                bill_id="bill_1", amount=Decimal("4.00"), reason="goodwill", request_id="r1"
            ),
            id=wid("refund-bill_1"),
            task_queue=task_queue,
        )
    assert (result.outcome, result.amount) == ("refunded", Decimal("4.00"))
    assert books.calls == ["reserve_refund", "gateway_refund", "complete_refund"]
