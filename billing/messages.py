"""The one-model-in, one-model-out messages of workflows, activities, signals and queries.

Frozen pydantic models, carried by `pydantic_data_converter`. Money is `Decimal`
plus a currency code; times are timezone-aware UTC.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict


class Message(BaseModel):
    model_config = ConfigDict(frozen=True)


TierName = Literal["free", "starter", "professional", "enterprise"]
# Why a tier changes: a person asked, the free limit was crossed, dunning took it, or a
# late payment gave it back.
ChangeReason = Literal["auto_conversion", "manual", "dunning", "restore"]


# --- Upgrade saga -----------------------------------------------------------------


class UpgradeInput(Message):
    """Change a customer's tier: up (prorated bill, charged) or down (no bill).

    `request_id` names the request (its Idempotency-Key, or a fresh id): every key the
    saga sends derives from it, so a new request is a new change. Empty in sagas started
    before it existed, whose keys derive from their workflow id.
    """

    customer_id: str
    target_tier: TierName
    reason: ChangeReason = "manual"
    request_id: str = ""


class TurnRequest(Message):
    """A tier change asking for (or giving back) its customer's turn."""

    customer_id: str
    workflow_id: str


class SubscriptionInput(Message):
    customer_id: str
    waiting: list[str] = []
    # With nobody waiting this long, the subscription closes; the next change reopens it.
    idle: timedelta = timedelta(seconds=10)


class TierToRestore(Message):
    tier: TierName | None


class UpgradeResult(Message):
    customer_id: str
    outcome: Literal["upgraded", "downgraded", "compensated", "unchanged"]
    from_tier: str
    to_tier: str
    bill_id: str | None = None
    message: str = ""


# --- Saga status, read by a query ----------------------------------------------------


class SagaStatus(Message):
    """What `GET /v1/workflows/{id}` shows: the step and what it means in words."""

    step: str
    details: str = ""
    bill_id: str | None = None
    amount: Decimal | None = None
    currency: str | None = None
    at: datetime | None = None


# --- Bills ------------------------------------------------------------------------


class BillRef(Message):
    """Enough of a bill for a saga to act on; the full bill lives in Postgres."""

    bill_id: str
    customer_id: str
    period: str
    kind: Literal["cycle", "upgrade"]
    tier: str
    total: Decimal
    currency: str
    status: Literal["pending", "paid", "void", "uncollectible"]
    amount_due: Decimal
    # Money held beyond what the bill owes (paid twice, or after a void): to refund.
    excess: Decimal = Decimal(0)
    # Set by the step that recorded a late payment of a written-off bill.
    write_off_reversed: bool = False


class IssueCycleBillInput(Message):
    customer_id: str
    period: str
    workflow_id: str


class IssueCycleBillResult(Message):
    """`bill` is None when the customer owes nothing for the period (started after it)."""

    bill: BillRef | None
    reason: str = ""


class IssueUpgradeBillInput(Message):
    customer_id: str
    from_tier: str
    to_tier: str
    at: datetime
    workflow_id: str
    idempotency_key: str


class VoidBillInput(Message):
    """Safe whether or not the bill was issued: it voids what the key names, if anything."""

    idempotency_key: str
    reason: str


class BillKey(Message):
    bill_id: str


# --- Customers and tiers ---------------------------------------------------------


class CustomerKey(Message):
    customer_id: str


class CustomerSnapshot(Message):
    customer_id: str
    tier: str
    status: str
    auto_upgrade: bool
    currency: str


class ChangeTierInput(Message):
    """Idempotent by `idempotency_key`: a retried step changes the tier once."""

    customer_id: str
    to_tier: str
    reason: str
    workflow_id: str
    idempotency_key: str
    at: datetime
    disable_auto_upgrade: bool = False


class ChangeTierResult(Message):
    customer_id: str
    from_tier: str
    to_tier: str


class DunningExhaustedInput(Message):
    customer_id: str
    bill_id: str
    workflow_id: str
    action: Literal["downgrade", "suspend"]
    at: datetime


class ListCustomersInput(Message):
    period: str
    after: str | None = None
    limit: int = 500


class CustomerPage(Message):
    customer_ids: list[str]
    next_after: str | None
    # Each customer's current tier, for the children's `Tier` search attribute.
    tiers: dict[str, str] = {}


# --- Charges and dunning -----------------------------------------------------------


class ChargePolicy(Message):
    """Read once per saga from the worker's settings, then fixed in history."""

    dunning_delays: list[timedelta]
    bank_transfer_deadline: timedelta
    dunning_exhausted_action: Literal["downgrade", "suspend"]
    billing_run_concurrency: int
    billing_run_page_size: int
    # How long a gateway call is retried under one key before look-ups take over.
    gateway_retry_budget: timedelta = timedelta(minutes=5)


class ChargeInput(Message):
    bill_id: str
    customer_id: str
    # False for an upgrade's charge: one try (plus activity retries), then compensate.
    dunning: bool = True
    # Set by the billing cycle that started this saga: what it already did for the bill.
    handoff: Handoff | None = None


class ChargeResult(Message):
    bill_id: str
    outcome: Literal["paid", "uncollectible", "failed", "not_due"]
    attempts: int
    message: str = ""


class AttemptChargeInput(Message):
    bill_id: str
    idempotency_key: str
    excluded_payment_methods: list[str] = []
    workflow_id: str


class AttemptOutcome(Message):
    """One try at the gateway; `no_method` when no usable payment method is on file.

    `in_flight`: another attempt (its key in `idempotency_key`) holds the bill's claim and
    must be resolved first; `unknown`: the gateway never answered this one.
    """

    status: Literal[
        "succeeded", "pending", "failed", "no_method", "not_due", "in_flight", "unknown"
    ]
    idempotency_key: str
    amount: Decimal = Decimal(0)
    currency: str = "USD"
    payment_method_id: str | None = None
    method: str = ""
    gateway_reference: str | None = None
    authorization_code: str | None = None
    decline_code: str | None = None
    decline_kind: Literal["hard", "soft"] | None = None
    message: str = ""


class ResolveChargeInput(Message):
    """Look a charge up by its key: the only way to learn an unknown outcome."""

    bill_id: str
    idempotency_key: str


class RecordAttemptInput(Message):
    bill_id: str
    outcome: AttemptOutcome
    # When dunning tries next if this attempt failed (None: no next try), for the event.
    next_try_at: datetime | None = None


class Settlement(Message):
    """A bank transfer's final word, from the gateway's signed webhook."""

    gateway_reference: str
    status: Literal["succeeded", "failed"]
    authorization_code: str | None = None
    decline_code: str | None = None
    message: str = ""


class RetryNow(Message):
    reason: str = "pay now"
    # The request that asked (its Idempotency-Key, or a fresh id): the same one twice is
    # one try, a new one another.
    request_id: str | None = None


class WriteOffInput(Message):
    bill_id: str
    reason: str


class GatewayReference(Message):
    gateway_reference: str


class Handoff(Message):
    """What a billing cycle did for its bill before it started the bill's charge saga.

    It issued the bill and read the policy, so the saga reads neither again; it may have
    made the first attempt itself (attempt 1 of the saga's keys): `first` is what that came
    to (`unknown` when its answers stayed lost), `attempts` what it counted, and `bill` the
    bill after `first` was recorded (None when nothing was recorded).
    """

    policy: ChargePolicy
    first: AttemptOutcome | None = None
    attempts: int = 0
    bill: BillRef | None = None


class ChargeAndRecordInput(Message):
    charge: AttemptChargeInput
    # When dunning tries next if this attempt fails (None: no next try), for the event.
    next_try_at: datetime | None = None


class ChargeRecorded(Message):
    """One attempt and, when the saga records its outcome, the bill after the record.

    `bill` is None when nothing was recorded: no method, nothing due, another attempt in
    flight, or the gateway's answer lost (then `outcome.status` is `unknown`).
    """

    outcome: AttemptOutcome
    bill: BillRef | None = None


class CycleOpened(Message):
    """The period's bill (None: nothing to bill, `reason` says why), the charge policy, and
    the type of the customer's newest payment method (None: none on file)."""

    bill: BillRef | None
    reason: str = ""
    policy: ChargePolicy
    method: str | None = None


# --- Billing run -----------------------------------------------------------------


class BillingCycleInput(Message):
    customer_id: str
    period: str


class BillingCycleResult(Message):
    customer_id: str
    period: str
    bill_id: str | None
    outcome: str


class BillingRunInput(Message):
    """`period` None means the month before the run's start (for the monthly Schedule)."""

    period: str | None = None
    after: str | None = None
    started: int = 0
    skipped: int = 0


class BillingRunResult(Message):
    period: str
    started: int
    skipped: int


class CycleWaiting(Message):
    """A cycle tells the billing run that started it that its bill now waits in a charge
    saga (dunning, a transfer, a lost answer looked up): it gives back its slot."""

    workflow_id: str


# --- Refunds ---------------------------------------------------------------------


class RefundInput(Message):
    bill_id: str
    amount: Decimal | None = None
    reason: str
    request_id: str
    # Which capture to refund (an overpayment is refunded from the capture that caused it);
    # None: the first capture with enough left.
    charge_reference: str | None = None


class ReserveRefundInput(Message):
    refund_id: str
    bill_id: str
    amount: Decimal | None
    reason: str
    workflow_id: str
    charge_reference: str | None = None
    # The key the gateway call will carry, kept with the reservation for look-ups.
    gateway_key: str | None = None


class RefundReservation(Message):
    refund_id: str
    bill_id: str
    customer_id: str
    amount: Decimal
    currency: str
    charge_reference: str


class GatewayRefundInput(Message):
    idempotency_key: str
    charge_reference: str
    amount: Decimal
    currency: str
    reason: str


class GatewayRefundOutcome(Message):
    """`unknown`: the gateway holds no refund under the key (a look-up's definite no)."""

    status: Literal["succeeded", "failed", "not_found"]
    gateway_reference: str
    message: str = ""


class CompleteRefundInput(Message):
    refund_id: str
    gateway_reference: str


class RefundKey(Message):
    refund_id: str


class RefundLookup(Message):
    idempotency_key: str


class RefundResult(Message):
    refund_id: str
    bill_id: str
    outcome: Literal["refunded", "refused", "failed"]
    amount: Decimal
    currency: str
    message: str = ""


class SagaNote(Message):
    """Why a saga compensated: the record a person reads afterwards."""

    workflow_id: str
    step: str
    message: str
    idempotency_key: str
    customer_id: str | None = None
    bill_id: str | None = None


# --- Money that reached the gateway outside a running charge saga -----------------------


class PaymentReceivedInput(Message):
    """A capture the gateway holds for `bill_id`: from a late webhook or reconciliation."""

    bill_id: str
    gateway_reference: str
    amount: Decimal
    currency: str
    method: str = ""
    authorization_code: str | None = None
    source: Literal["saga", "webhook", "reconciliation"]


class CaptureRecorded(Message):
    """What recording a capture did: `recorded` False when the ledger already had it."""

    bill: BillRef
    recorded: bool
    write_off_reversed: bool = False


class PaymentReceivedResult(Message):
    bill_id: str
    gateway_reference: str
    recorded: bool
    status: str
    excess_refunded: Decimal = Decimal(0)
    write_off_reversed: bool = False
