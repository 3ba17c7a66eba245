"""What the billing cycle's own activities (`CollectActivities`) take and answer."""

from __future__ import annotations

from datetime import datetime

from activities.config_messages import ChargePolicy
from activities.gateway_messages import AttemptChargeInput, AttemptOutcome
from activities.ledger_messages import BillRef
from billing.messages import Message
from billing.payments import PaymentMethodType


class CycleOpened(Message):
    """The period's bill (None: nothing to bill, `reason` says why), the charge policy, and
    the type of the customer's newest payment method (None: none on file)."""

    bill: BillRef | None
    reason: str = ""
    policy: ChargePolicy
    method: PaymentMethodType | None = None


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
