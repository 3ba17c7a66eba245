"""In-memory stand-ins for the activities, registered under the real activity names.

Only workflow unit tests use these; integration tests run the real activities
against real Postgres, Redis, Temporal and the gateway simulator.

Turn-taking is real: `request_turn` signal-with-starts the real SubscriptionWorkflow (the
test worker registers it), so an upgrade or dunning's downgrade waits its turn as in
production. Customer and bill ids are unique per `Books`: the session's test server keeps
every workflow id (and every subscription) of the tests before.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any

from temporalio import activity
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Worker

from activities.collect import RECORDED
from activities.collect_messages import ChargeAndRecordInput, ChargeRecorded, CycleOpened
from activities.config_messages import ChargePolicy
from activities.customers_messages import (
    ChangeTierInput,
    ChangeTierResult,
    CustomerKey,
    CustomerPage,
    CustomerSnapshot,
    DunningExhaustedInput,
    ListCustomersInput,
    TierToRestore,
)
from activities.gateway_messages import (
    AttemptChargeInput,
    AttemptOutcome,
    GatewayReference,
    GatewayRefundInput,
    GatewayRefundOutcome,
    RefundLookup,
    ResolveChargeInput,
    Settlement,
)
from activities.ledger_messages import (
    BillKey,
    BillRef,
    CaptureRecorded,
    IssueCycleBillInput,
    IssueCycleBillResult,
    IssueUpgradeBillInput,
    PaymentReceivedInput,
    RecordAttemptInput,
    SagaNote,
    VoidBillInput,
    WriteOffInput,
)
from activities.refunds_messages import (
    CompleteRefundInput,
    RefundKey,
    RefundReservation,
    ReserveRefundInput,
)
from activities.subscriptions import SubscriptionActivities
from activities.subscriptions_messages import TurnRequest
from billing.workflow_ids import subscription_id
from worker import WORKFLOWS
from workflows.subscription import SubscriptionWorkflow

# A stand-in may raise instead of answering: an answer lost, a gateway that is down.
Script = Callable[[AttemptChargeInput, int], AttemptOutcome]
Resolve = Callable[[ResolveChargeInput, int], AttemptOutcome]
RefundScript = Callable[[GatewayRefundInput, int], GatewayRefundOutcome]
# What `get_charge` answers, in order: still pending (None), settled, or the gateway away.
Lookup = Settlement | None | BaseException


def lost(what: str = "charge") -> ApplicationError:
    """The gateway's answer never came (the client timed out): retried, same key."""
    return ApplicationError(f"the {what}'s answer was lost (timeout)", type="GatewayUnavailable")


def nothing_under_the_key(req: ResolveChargeInput, n: int) -> AttemptOutcome:
    """What `resolve_charge` answers when the gateway holds no charge under the key."""
    return AttemptOutcome(
        status="failed",
        idempotency_key=req.idempotency_key,
        amount=Decimal("10.00"),
        payment_method_id="pm_1",
        method="credit_card",
        message="the gateway holds no charge under this key: nothing was taken",
    )


def found(status: str, key: str, **extra: Any) -> AttemptOutcome:
    """What `resolve_charge` answers when the gateway holds a charge under `key`."""
    base: dict[str, Any] = {
        "status": status,
        "idempotency_key": key,
        "amount": Decimal("10.00"),
        "currency": "USD",
        "payment_method_id": "pm_1",
        "method": "credit_card",
        "gateway_reference": f"ch_{key}",
    }
    if status == "succeeded":
        base["authorization_code"] = "A1B2C3"
    if status == "failed":
        base.update(decline_code="insufficient_funds", decline_kind="soft")
    base.update(extra)
    return AttemptOutcome(**base)


@asynccontextmanager
async def workflow_worker(client: Client, task_queue: str, books: Books) -> AsyncIterator[Worker]:
    """Every workflow of the service (the real SubscriptionWorkflow among them) on stand-ins.

    On the way out the customer's subscription is let close (it does, idle, after 10 s of
    skipped time), while this worker still runs it. Left open on a queue whose worker is
    gone, its next workflow task could never be taken and would hold the shared test
    server's time skipping for every later test; terminating it instead can leak the
    test server's time lock when the terminate meets a workflow task in flight.
    """
    workflows = list(dict.fromkeys([*WORKFLOWS, SubscriptionWorkflow]))
    async with Worker(
        client, task_queue=task_queue, workflows=workflows, activities=books.activities()
    ) as worker:
        try:
            yield worker
        finally:
            await _let_the_subscription_close(client, books.customer_id)


async def _let_the_subscription_close(client: Client, customer_id: str) -> None:
    handle = client.get_workflow_handle(subscription_id(customer_id))
    try:
        await asyncio.wait_for(handle.result(), timeout=30)
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise
    except (TimeoutError, WorkflowFailureError):
        with contextlib.suppress(RPCError):
            await handle.terminate("the test is over")


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
            # A lost answer is retried under its key for this long, then looked up.
            gateway_retry_budget=timedelta(minutes=2),
        )
    )
    tier: str = "free"
    bill_status: str = "pending"
    calls: list[str] = field(default_factory=list)
    attempt_times: list[float] = field(default_factory=list)
    tiers: list[str] = field(default_factory=list)
    late_settlement: Settlement | None = None
    # `get_charge`'s answers in order (a raised one is the gateway away, retried); when
    # they run out, `late_settlement`.
    lookups: list[Lookup] = field(default_factory=list)
    # `resolve_charge`: what the gateway holds under a key whose answer was lost.
    resolve: Resolve = nothing_under_the_key
    # The gateway's refund call, and what a look-up by the refund's key finds.
    refund_script: RefundScript = lambda req, n: GatewayRefundOutcome(
        status="succeeded", gateway_reference="re_1"
    )
    refund_found: GatewayRefundOutcome = field(
        default_factory=lambda: GatewayRefundOutcome(
            status="not_found", gateway_reference="", message="no refund under this key"
        )
    )
    restore_tier: str | None = None
    customers: list[str] = field(default_factory=list)
    # Every idempotency key the charge stand-in was called with, in call order.
    charge_keys: list[str] = field(default_factory=list)
    # Tier changes that asked for their customer's turn, in order.
    turns: list[str] = field(default_factory=list)
    # The type of the customer's newest payment method, as `open_cycle` reads it.
    method_type: str | None = "credit_card"
    # `open_cycle` calls under way (each takes `pause` seconds of real time), and the most
    # of them at once: how many cycles were working at the same time.
    open_cycles: int = 0
    most_open: int = 0
    pause: float = 0.0
    # Bill ids unique per test: charge workflow ids derive from them and are never reused.
    suffix: str = field(default_factory=lambda: uuid.uuid4().hex[:8])

    @property
    def customer_id(self) -> str:
        """Unique per test: each customer has one SubscriptionWorkflow, on this test's queue."""
        return f"cus_{self.suffix}"

    @property
    def bill_id(self) -> str:
        return f"bill_{self.suffix}"

    @property
    def records(self) -> list[str]:
        """The attempts the saga recorded (`record:<status>`), in order."""
        return [c for c in self.calls if c.startswith("record:")]

    def bill(self, bill_id: str = "bill_1", total: str = "10.00") -> BillRef:
        return BillRef(
            bill_id=bill_id,
            customer_id=self.customer_id,
            period="2026-10",
            kind="cycle",
            tier="starter",
            total=Decimal(total),
            currency="USD",
            status=self.bill_status,
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
            books.charge_keys.append(req.idempotency_key)
            books.attempt_times.append(activity.info().current_attempt_scheduled_time.timestamp())
            return books.script(req, books.calls.count("charge"))

        @activity.defn(name="resolve_charge")
        async def resolve_charge(req: ResolveChargeInput) -> AttemptOutcome:
            books.calls.append(f"resolve:{req.idempotency_key}")
            n = sum(1 for c in books.calls if c.startswith("resolve:"))
            return books.resolve(req, n)

        @activity.defn(name="get_charge")
        async def get_charge(req: GatewayReference) -> Settlement | None:
            books.calls.append("get_charge")
            if books.lookups:
                answer = books.lookups.pop(0)
                if isinstance(answer, BaseException):
                    raise answer
                return answer
            return books.late_settlement

        @activity.defn(name="record_attempt")
        async def record_attempt(req: RecordAttemptInput) -> BillRef:
            books.calls.append(f"record:{req.outcome.status}")
            if req.outcome.status == "succeeded":
                books.bill_status = "paid"
            return books.bill(req.bill_id)

        @activity.defn(name="record_payment")
        async def record_payment(req: PaymentReceivedInput) -> CaptureRecorded:
            books.calls.append(f"record_payment:{req.gateway_reference}")
            recorded = books.bill_status != "paid"
            books.bill_status = "paid"
            return CaptureRecorded(bill=books.bill(req.bill_id), recorded=recorded)

        @activity.defn(name="tier_to_restore")
        async def tier_to_restore(req: BillKey) -> TierToRestore:
            return TierToRestore(tier=books.restore_tier)

        @activity.defn(name="request_turn")
        async def request_turn(req: TurnRequest) -> None:
            books.turns.append(req.workflow_id)
            turns = SubscriptionActivities(activity.client(), activity.info().task_queue)
            await turns.request_turn(req)

        @activity.defn(name="is_running")
        async def is_running(req: TurnRequest) -> bool:
            turns = SubscriptionActivities(activity.client(), activity.info().task_queue)
            return await turns.is_running(req)

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

        @activity.defn(name="open_cycle")
        async def open_cycle(req: IssueCycleBillInput) -> CycleOpened:
            books.calls.append(f"open_cycle:{req.customer_id}")
            books.open_cycles += 1
            books.most_open = max(books.most_open, books.open_cycles)
            await asyncio.sleep(books.pause)
            books.open_cycles -= 1
            bill = books.bill(f"bill_{req.customer_id}_{books.suffix}")
            return CycleOpened(bill=bill, policy=books.policy, method=books.method_type)

        @activity.defn(name="charge_and_record")
        async def charge_and_record(req: ChargeAndRecordInput) -> ChargeRecorded:
            # The two stand-ins in one activity, as the real one composes the real two.
            out = await charge(req.charge)
            if out.status not in RECORDED:
                return ChargeRecorded(outcome=out)
            record = RecordAttemptInput(
                bill_id=req.charge.bill_id, outcome=out, next_try_at=req.next_try_at
            )
            return ChargeRecorded(outcome=out, bill=await record_attempt(record))

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
                customer_id=books.customer_id,
                amount=req.amount or Decimal("10.00"),
                currency="USD",
                charge_reference="ch_1",
            )

        @activity.defn(name="refund")
        async def refund(req: GatewayRefundInput) -> GatewayRefundOutcome:
            books.calls.append("gateway_refund")
            return books.refund_script(req, books.calls.count("gateway_refund"))

        @activity.defn(name="resolve_refund")
        async def resolve_refund(req: RefundLookup) -> GatewayRefundOutcome:
            books.calls.append(f"resolve_refund:{req.idempotency_key}")
            return books.refund_found

        @activity.defn(name="complete_refund")
        async def complete_refund(req: CompleteRefundInput) -> None:
            books.calls.append("complete_refund")

        @activity.defn(name="release_refund")
        async def release_refund(req: RefundKey) -> None:
            books.calls.append("release_refund")

        return [
            charge_policy, charge, resolve_charge, get_charge, record_attempt, record_payment,
            write_off, dunning_exhausted, get_customer, change_tier, tier_to_restore,
            request_turn, is_running, issue_upgrade_bill, issue_cycle_bill, void_bill, get_bill,
            record_saga_note, list_billable_customers, reserve_refund, refund, resolve_refund,
            complete_refund, release_refund, open_cycle, charge_and_record,
        ]  # fmt: skip
