"""In-memory stand-ins for the activities, registered under the real activity names.

Only workflow unit tests use these; integration tests run the real activities
against real Postgres, Redis, Temporal and the gateway simulator.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any

from temporalio import activity

from billing.messages import (
    AttemptChargeInput,
    AttemptOutcome,
    BillKey,
    BillRef,
    ChangeTierInput,
    ChangeTierResult,
    ChargePolicy,
    CompleteRefundInput,
    CustomerKey,
    CustomerPage,
    CustomerSnapshot,
    DunningExhaustedInput,
    GatewayReference,
    GatewayRefundInput,
    GatewayRefundOutcome,
    IssueCycleBillInput,
    IssueCycleBillResult,
    IssueUpgradeBillInput,
    ListCustomersInput,
    RecordAttemptInput,
    RefundKey,
    RefundReservation,
    ReserveRefundInput,
    SagaNote,
    Settlement,
    VoidBillInput,
    WriteOffInput,
)

Script = Callable[[AttemptChargeInput, int], AttemptOutcome]


def outcome(status: str, req: AttemptChargeInput, **extra: Any) -> AttemptOutcome:
    base: dict[str, Any] = {
        "status": status,
        "idempotency_key": req.idempotency_key,
        "amount": Decimal("10.00"),
        "currency": "USD",
        "payment_method_id": "pm_1",
        "method": "credit_card",
        "gateway_reference": f"ch_{req.idempotency_key}",
    }
    if status == "failed":
        base.update(decline_code="insufficient_funds", decline_kind="soft")
    base.update(extra)
    return AttemptOutcome(**base)


@dataclass
class Books:
    """What the stand-ins did, for the test to assert on."""

    script: Script
    policy: ChargePolicy = field(
        default_factory=lambda: ChargePolicy(
            dunning_delays=[timedelta(days=1), timedelta(days=3), timedelta(days=7)],
            bank_transfer_deadline=timedelta(days=3),
            dunning_exhausted_action="downgrade",
            billing_run_concurrency=5,
            billing_run_page_size=3,
        )
    )
    tier: str = "free"
    bill_status: str = "pending"
    calls: list[str] = field(default_factory=list)
    attempt_times: list[float] = field(default_factory=list)
    tiers: list[str] = field(default_factory=list)
    late_settlement: Settlement | None = None
    customers: list[str] = field(default_factory=list)
    # Bill ids unique per test: charge workflow ids derive from them and are never reused.
    suffix: str = field(default_factory=lambda: uuid.uuid4().hex[:8])

    def bill(self, bill_id: str = "bill_1", total: str = "10.00") -> BillRef:
        return BillRef(
            bill_id=bill_id,
            customer_id="cus_1",
            period="2026-10",
            kind="cycle",
            tier="starter",
            total=Decimal(total),
            currency="USD",
            status=self.bill_status,  # type: ignore[arg-type]
            amount_due=Decimal(0) if self.bill_status == "paid" else Decimal(total),
        )

    def activities(self) -> list[Callable[..., Any]]:
        books = self

        @activity.defn(name="charge_policy")
        async def charge_policy() -> ChargePolicy:
            return books.policy

        @activity.defn(name="charge")
        async def charge(req: AttemptChargeInput) -> AttemptOutcome:
            books.calls.append("charge")
            books.attempt_times.append(activity.info().current_attempt_scheduled_time.timestamp())
            return books.script(req, books.calls.count("charge"))

        @activity.defn(name="get_charge")
        async def get_charge(req: GatewayReference) -> Settlement | None:
            books.calls.append("get_charge")
            return books.late_settlement

        @activity.defn(name="record_attempt")
        async def record_attempt(req: RecordAttemptInput) -> BillRef:
            books.calls.append(f"record:{req.outcome.status}")
            if req.outcome.status == "succeeded":
                books.bill_status = "paid"
            return books.bill(req.bill_id)

        @activity.defn(name="write_off")
        async def write_off(req: WriteOffInput) -> BillRef:
            books.calls.append("write_off")
            books.bill_status = "uncollectible"
            return books.bill(req.bill_id)

        @activity.defn(name="dunning_exhausted")
        async def dunning_exhausted(req: DunningExhaustedInput) -> ChangeTierResult:
            books.calls.append(f"dunning_exhausted:{req.action}")
            old, books.tier = books.tier, "free"
            return ChangeTierResult(customer_id=req.customer_id, from_tier=old, to_tier="free")

        @activity.defn(name="get_customer")
        async def get_customer(req: CustomerKey) -> CustomerSnapshot:
            return CustomerSnapshot(
                customer_id=req.customer_id,
                tier=books.tier,
                status="active",
                auto_upgrade=True,
                currency="USD",
            )

        @activity.defn(name="change_tier")
        async def change_tier(req: ChangeTierInput) -> ChangeTierResult:
            books.calls.append(f"change_tier:{req.to_tier}")
            old, books.tier = books.tier, req.to_tier
            books.tiers.append(req.to_tier)
            return ChangeTierResult(customer_id=req.customer_id, from_tier=old, to_tier=req.to_tier)

        @activity.defn(name="issue_upgrade_bill")
        async def issue_upgrade_bill(req: IssueUpgradeBillInput) -> BillRef:
            books.calls.append("issue_upgrade_bill")
            return books.bill(f"bill_up_{books.suffix}", "5.00")

        @activity.defn(name="issue_cycle_bill")
        async def issue_cycle_bill(req: IssueCycleBillInput) -> IssueCycleBillResult:
            books.calls.append(f"issue_cycle_bill:{req.customer_id}")
            return IssueCycleBillResult(bill=books.bill(f"bill_{req.customer_id}_{books.suffix}"))

        @activity.defn(name="void_bill")
        async def void_bill(req: VoidBillInput) -> None:
            books.calls.append("void_bill")
            books.bill_status = "void"

        @activity.defn(name="get_bill")
        async def get_bill(req: BillKey) -> BillRef:
            return books.bill(req.bill_id)

        @activity.defn(name="record_saga_note")
        async def record_saga_note(req: SagaNote) -> None:
            books.calls.append(f"note:{req.step}")

        @activity.defn(name="list_billable_customers")
        async def list_billable_customers(req: ListCustomersInput) -> CustomerPage:
            after = [c for c in books.customers if req.after is None or c > req.after]
            page = after[: req.limit]
            more = len(after) > req.limit
            return CustomerPage(customer_ids=page, next_after=page[-1] if more else None)

        @activity.defn(name="reserve_refund")
        async def reserve_refund(req: ReserveRefundInput) -> RefundReservation:
            books.calls.append("reserve_refund")
            return RefundReservation(
                refund_id=req.refund_id,
                bill_id=req.bill_id,
                customer_id="cus_1",
                amount=req.amount or Decimal("10.00"),
                currency="USD",
                charge_reference="ch_1",
            )

        @activity.defn(name="refund")
        async def refund(req: GatewayRefundInput) -> GatewayRefundOutcome:
            books.calls.append("gateway_refund")
            return GatewayRefundOutcome(status="succeeded", gateway_reference="re_1")

        @activity.defn(name="complete_refund")
        async def complete_refund(req: CompleteRefundInput) -> None:
            books.calls.append("complete_refund")

        @activity.defn(name="release_refund")
        async def release_refund(req: RefundKey) -> None:
            books.calls.append("release_refund")

        return [
            charge_policy, charge, get_charge, record_attempt, write_off, dunning_exhausted,
            get_customer, change_tier, issue_upgrade_bill, issue_cycle_bill, void_bill, get_bill,
            record_saga_note, list_billable_customers, reserve_refund, refund, complete_refund,
            release_refund,
        ]  # fmt: skip
