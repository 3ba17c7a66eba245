"""What the refund activities (`RefundActivities`) take and answer, on the wire."""

from __future__ import annotations

from decimal import Decimal

from billing.messages import Message


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


class CompleteRefundInput(Message):
    refund_id: str
    gateway_reference: str


class RefundKey(Message):
    refund_id: str
