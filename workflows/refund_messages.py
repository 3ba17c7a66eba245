"""RefundWorkflow's input and result."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from billing.messages import Message


class RefundInput(Message):
    bill_id: str
    amount: Decimal | None = None
    reason: str
    request_id: str
    # Which capture to refund (an overpayment is refunded from the capture that caused it);
    # None: the first capture with enough left.
    charge_reference: str | None = None


class RefundResult(Message):
    refund_id: str
    bill_id: str
    outcome: Literal["refunded", "refused", "failed"]
    amount: Decimal
    currency: str
    message: str = ""
