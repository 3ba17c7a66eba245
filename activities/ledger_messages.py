"""What the ledger activities (`LedgerActivities`) take and answer, on the wire.

`PaymentReceivedInput` is also `PaymentReceivedWorkflow`'s input, passed through to
`record_payment` as it came.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Literal

from activities.gateway_messages import AttemptOutcome
from billing.catalog import Tier
from billing.ledger import BillStatus
from billing.messages import Message


class BillRef(Message):
    """Enough of a bill for a saga to act on; the full bill lives in Postgres."""

    bill_id: str
    customer_id: str
    period: str
    kind: Literal["cycle", "upgrade"]
    tier: Tier
    total: Decimal
    currency: str
    status: BillStatus
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
    from_tier: Tier
    to_tier: Tier
    at: datetime
    workflow_id: str
    idempotency_key: str


class VoidBillInput(Message):
    """Safe whether or not the bill was issued: it voids what the key names, if anything."""

    idempotency_key: str
    reason: str


class BillKey(Message):
    bill_id: str


class RecordAttemptInput(Message):
    bill_id: str
    outcome: AttemptOutcome
    # When dunning tries next if this attempt failed (None: no next try), for the event.
    next_try_at: datetime | None = None


class WriteOffInput(Message):
    bill_id: str
    reason: str


class SagaNote(Message):
    """Why a saga compensated: the record a person reads afterwards."""

    workflow_id: str
    step: str
    message: str
    idempotency_key: str
    customer_id: str | None = None
    bill_id: str | None = None


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
