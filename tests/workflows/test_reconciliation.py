"""ReconciliationWorkflow on stand-in activities: paging, continue-as-new, failed recordings."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from temporalio import activity, workflow
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

from activities.ledger_messages import PaymentReceivedInput
from billing.payments import GatewayTransaction, TransactionPage
from billing.reconciliation import (
    Fixed,
    LedgerFacts,
    ListTransactionsInput,
    PagePlan,
    PlanPageInput,
    ReconciliationInput,
    RecordRefundsInput,
    RefundsRecorded,
    ReportSave,
    plan_page,
)
from workflows.payment_received_messages import PaymentReceivedResult
from workflows.reconciliation import PAGES_PER_RUN, ReconciliationWorkflow

AT = datetime(2026, 5, 2, tzinfo=UTC)


@workflow.defn(name="PaymentReceivedWorkflow")
class PaymentReceivedStandIn:
    """Records every capture, refunds 1.00 of each; a reference starting ch_fail fails."""

    @workflow.run
    async def run(self, inp: PaymentReceivedInput) -> PaymentReceivedResult:
        if inp.gateway_reference.startswith("ch_fail"):
            raise ApplicationError("the bill is locked", non_retryable=True)
        return PaymentReceivedResult(
            bill_id=inp.bill_id,
            gateway_reference=inp.gateway_reference,
            recorded=True,
            status="paid",
            excess_refunded=Decimal("1.00"),
        )


def charge(ref: str, bill_id: str = "bill_1") -> GatewayTransaction:
    return GatewayTransaction(
        kind="charge",
        gateway_reference=ref,
        idempotency_key=f"key-{ref}",
        status="succeeded",
        amount=Decimal("5.00"),
        currency="USD",
        created_at=AT,
        metadata={"bill_id": bill_id},
    )


def refund(ref: str, of: str) -> GatewayTransaction:
    return GatewayTransaction(
        kind="refund",
        gateway_reference=ref,
        idempotency_key=f"key-{ref}",
        status="succeeded",
        amount=Decimal("1.00"),
        currency="USD",
        created_at=AT,
        charge_reference=of,
    )


@dataclass
class Gateway:
    """The gateway's transactions, one page per list; the ledger knows `bill_1` only."""

    pages: list[list[GatewayTransaction]]
    saved: list[ReportSave] = field(default_factory=list)
    cursors: list[str | None] = field(default_factory=list)

    def activities(self) -> list[Callable[..., Any]]:
        @activity.defn(name="list_transactions")
        async def list_transactions(req: ListTransactionsInput) -> TransactionPage:
            self.cursors.append(req.cursor)
            at = int(req.cursor or 0)
            last = at + 1 >= len(self.pages)
            return TransactionPage(
                transactions=self.pages[at], next_cursor=None if last else str(at + 1)
            )

        @activity.defn(name="plan_page")
        async def plan(req: PlanPageInput) -> PagePlan:
            return plan_page(req.transactions, LedgerFacts(bill_currencies={"bill_1": "USD"}))

        @activity.defn(name="record_refunds")
        async def record_refunds(req: RecordRefundsInput) -> RefundsRecorded:
            fixed = [
                Fixed(
                    kind="refund",
                    gateway_reference=r.gateway_reference,
                    bill_id=r.bill_id,
                    amount=r.amount,
                    currency=r.currency,
                    charge_reference=r.charge_reference,
                )
                for r in req.refunds
            ]
            return RefundsRecorded(fixed=fixed)

        @activity.defn(name="begin_report")
        async def begin_report(req: ReportSave) -> None:
            self.saved.append(req)

        @activity.defn(name="save_report")
        async def save_report(req: ReportSave) -> None:
            self.saved.append(req)

        return [list_transactions, plan, record_refunds, begin_report, save_report]


async def run(time_env, task_queue: str, gateway: Gateway, inp: ReconciliationInput):
    async with Worker(
        time_env.client,
        task_queue=task_queue,
        workflows=[ReconciliationWorkflow, PaymentReceivedStandIn],
        activities=gateway.activities(),
    ):
        return await time_env.client.execute_workflow(
            ReconciliationWorkflow.run,
            inp,
            id=f"reconciliation-{uuid.uuid4().hex[:8]}",
            task_queue=task_queue,
        )


async def test_found_money_is_recorded_and_the_rest_listed(time_env, task_queue):
    gateway = Gateway(
        pages=[
            [charge("ch_1"), refund("re_1", "ch_1")],
            [charge("ch_2", bill_id="bill_gone"), charge("ch_fail_3")],
        ]
    )
    result = await run(time_env, task_queue, gateway, ReconciliationInput(request_id="r1"))
    assert (result.id, result.checked, result.matched) == ("rec_r1", 4, 0)
    assert [(f.kind, f.gateway_reference) for f in result.fixed] == [
        ("capture", "ch_1"),
        ("refund", "re_1"),
    ]
    assert result.fixed[0].excess_refunded == Decimal("1.00")
    assert [(u.gateway_reference, u.bill_id) for u in result.unresolved] == [
        ("ch_2", "bill_gone"),
        ("ch_fail_3", "bill_1"),
    ]
    assert "recording it failed: the bill is locked" in result.unresolved[1].reason
    assert gateway.cursors == [None, "1"]
    # Begun, saved after each page, completed last with everything in it.
    assert [s.status for s in gateway.saved] == ["running", "running", "completed"]
    assert gateway.saved[-1].fixed == result.fixed


async def test_a_long_listing_continues_as_new_and_keeps_its_totals(time_env, task_queue):
    pages = [[charge(f"ch_{i}", bill_id="bill_gone")] for i in range(PAGES_PER_RUN + 3)]
    gateway = Gateway(pages=pages)
    since = datetime(2026, 4, 1, tzinfo=UTC)
    result = await run(time_env, task_queue, gateway, ReconciliationInput(since=since))
    assert result.since == since
    assert result.checked == len(pages) == len(result.unresolved)
    assert gateway.cursors == [None, *(str(i) for i in range(1, len(pages)))]
    # One report across the runs: begun once, under the first run's id.
    assert [s.status for s in gateway.saved].count("running") == len(pages)
    assert len({s.id for s in gateway.saved}) == 1
