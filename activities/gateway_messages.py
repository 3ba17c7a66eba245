"""What the gateway activities (`GatewayActivities`) take and answer, on the wire.

`Settlement` is also `ChargeWorkflow.settle`'s signal: the webhook and a look-up by
reference give the same final word.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from billing.messages import Message
from billing.payments import DeclineKind, RefundRequest


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
    decline_kind: DeclineKind | None = None
    message: str = ""


class ResolveChargeInput(Message):
    """Look a charge up by its key: the only way to learn an unknown outcome."""

    bill_id: str
    idempotency_key: str


class GatewayReference(Message):
    gateway_reference: str


class Settlement(Message):
    """A bank transfer's final word, from the gateway's signed webhook."""

    gateway_reference: str
    status: Literal["succeeded", "failed"]
    authorization_code: str | None = None
    decline_code: str | None = None
    message: str = ""


# The gateway port's own refund request, not a copy of it: the same fields on the wire.
GatewayRefundInput = RefundRequest


class GatewayRefundOutcome(Message):
    """`unknown`: the gateway holds no refund under the key (a look-up's definite no)."""

    status: Literal["succeeded", "failed", "not_found"]
    gateway_reference: str
    message: str = ""


class RefundLookup(Message):
    idempotency_key: str
