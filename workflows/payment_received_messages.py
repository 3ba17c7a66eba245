"""PaymentReceivedWorkflow's result (its input is the ledger activities'
`PaymentReceivedInput`, recorded as it came)."""

from __future__ import annotations

from decimal import Decimal

from billing.ledger import BillStatus
from billing.messages import Message


class PaymentReceivedResult(Message):
    bill_id: str
    gateway_reference: str
    recorded: bool
    status: BillStatus
    excess_refunded: Decimal = Decimal(0)
    write_off_reversed: bool = False
