"""One `workflow.now()` per tier change: the change and its bill share the instant.

On a time-skipping server of its own (this test moves the clock to a month's end, which
the session's shared environment should not see), with stand-ins for the database
activities and the real turn-taking (SubscriptionWorkflow and its signal-with-start).
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest_asyncio
from temporalio import activity
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.customers_messages import (
    ChangeTierInput,
    ChangeTierResult,
    CustomerKey,
    CustomerSnapshot,
)
from activities.ledger_messages import BillRef, IssueUpgradeBillInput, SagaNote
from activities.subscriptions import SubscriptionActivities
from billing.periods import next_period, period_bounds, period_of
from tests.converter import DATA_CONVERTER
from workflows.search_attributes import ALL
from workflows.subscription import SubscriptionWorkflow
from workflows.upgrade import UpgradeWorkflow
from workflows.upgrade_messages import UpgradeInput

# The tier change takes this long (real time, no skipping while an activity runs): a
# second `now()` after it would be this much later, across the month's end.
CHANGE_TAKES_S = 1.5


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def env() -> AsyncIterator[WorkflowEnvironment]:
    beside = Path(sys.executable).parent / "temporal-test-server"
    server = str(beside) if beside.exists() else shutil.which("temporal-test-server")
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=DATA_CONVERTER, test_server_existing_path=server
    )
    await env.client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=env.client.namespace,
            search_attributes={k.name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD for k in ALL},
        )
    )
    try:
        yield env
    finally:
        await env.shutdown()


def stand_ins(seen: dict[str, datetime]) -> list[Callable[..., Any]]:
    @activity.defn(name="get_customer")
    async def get_customer(req: CustomerKey) -> CustomerSnapshot:
        return CustomerSnapshot(
            customer_id=req.customer_id, tier="starter", status="active", auto_upgrade=True,
            currency="USD",
        )  # fmt: skip

    @activity.defn(name="change_tier")
    async def change_tier(req: ChangeTierInput) -> ChangeTierResult:
        seen["change"] = req.at
        await asyncio.sleep(CHANGE_TAKES_S)
        return ChangeTierResult(
            customer_id=req.customer_id, from_tier="starter", to_tier=req.to_tier
        )

    @activity.defn(name="issue_upgrade_bill")
    async def issue_upgrade_bill(req: IssueUpgradeBillInput) -> BillRef:
        seen["bill"] = req.at
        return BillRef(
            bill_id="bill_1", customer_id=req.customer_id, period=period_of(req.at),
            kind="upgrade", tier=req.to_tier, total=Decimal("0.01"), currency="USD",
            status="paid", amount_due=Decimal(0),
        )  # fmt: skip

    @activity.defn(name="record_saga_note")
    async def record_saga_note(req: SagaNote) -> None:
        return None

    return [get_customer, change_tier, issue_upgrade_bill, record_saga_note]


async def test_an_upgrade_at_a_months_end_takes_one_now_for_the_change_and_its_bill(
    env: WorkflowEnvironment,
):
    queue = f"tier-{uuid.uuid4().hex[:8]}"
    seen: dict[str, datetime] = {}
    turns = SubscriptionActivities(env.client, queue)
    async with Worker(
        env.client,
        task_queue=queue,
        workflows=[UpgradeWorkflow, SubscriptionWorkflow],
        activities=[*stand_ins(seen), turns.request_turn, turns.is_running],
    ):
        now = await env.get_current_time()
        end = period_bounds(period_of(now))[1]
        if end - now < timedelta(seconds=5):
            end = period_bounds(next_period(period_of(now)))[1]
        await env.sleep(end - now - timedelta(milliseconds=750))  # 23:59:59.25, last day
        result = await env.client.execute_workflow(
            UpgradeWorkflow.run,
            UpgradeInput(customer_id="cus_1", target_tier="professional", request_id="r1"),
            id=f"upgrade-cus_1-professional-{uuid.uuid4().hex[:8]}",
            task_queue=queue,
        )
    assert result.outcome == "upgraded"
    # The bill prorates from the very instant the tier changed: the same period, the same
    # remaining fraction, even when the change itself ran past midnight.
    assert seen["bill"] == seen["change"]
    assert period_of(seen["bill"]) == period_of(seen["change"])
