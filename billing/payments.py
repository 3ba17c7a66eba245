"""The payment-gateway interface: what a charge and a refund ask and answer, for any gateway.

Declines are outcomes (`ChargeStatus.FAILED`), never exceptions. Transient failures
(timeouts, 5xx, connection refused) raise `billing.errors.DependencyUnavailable`, translated
at the adapter edge. Tokens never appear in exception messages or logs.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Literal, Protocol

from pydantic import BaseModel, field_validator


class PaymentMethodType(StrEnum):
    CREDIT_CARD = "credit_card"
    DEBIT_CARD = "debit_card"
    BANK_TRANSFER = "bank_transfer"
    PAYPAL = "paypal"


class ChargeStatus(StrEnum):
    SUCCEEDED = "succeeded"
    PENDING = "pending"
    FAILED = "failed"


def recorded_attempt_status(outcome: str) -> ChargeStatus | None:
    """The status a saga's charge outcome is recorded with: `no_method` is a failed try,
    `not_due` no try at all (None). In-flight and unknown outcomes are resolved by a
    look-up first and are never recorded as they are."""
    if outcome == "not_due":
        return None
    if outcome == "no_method":
        return ChargeStatus.FAILED
    try:
        return ChargeStatus(outcome)
    except ValueError:
        raise ValueError(f"a {outcome!r} charge outcome is resolved, not recorded") from None


class DeclineKind(StrEnum):
    """A hard decline is never retried with the same method; a soft one is dunned."""

    HARD = "hard"
    SOFT = "soft"


class ChargeRequest(BaseModel, frozen=True):
    """One capture attempt; the idempotency key makes a retried request the same capture."""

    idempotency_key: str
    amount: Decimal
    currency: str
    method_type: PaymentMethodType
    token: str
    description: str = ""
    # Carries bill_id, customer_id and workflow_id, so a webhook can find its saga.
    metadata: dict[str, str] = {}


class ChargeOutcome(BaseModel, frozen=True):
    """What the gateway answered; a failed outcome carries a decline code and kind."""

    status: ChargeStatus
    gateway_reference: str
    amount: Decimal
    currency: str
    authorization_code: str | None = None
    decline_code: str | None = None
    decline_kind: DeclineKind | None = None
    message: str = ""


class RefundRequest(BaseModel, frozen=True):
    """A partial or full refund of a captured charge, idempotent by its key."""

    idempotency_key: str
    charge_reference: str
    amount: Decimal
    currency: str
    reason: str = ""


class RefundOutcome(BaseModel, frozen=True):
    status: Literal["succeeded", "failed"]
    gateway_reference: str
    amount: Decimal
    currency: str
    message: str = ""


TransactionStatus = Literal["succeeded", "pending", "failed"]


class GatewayTransaction(BaseModel, frozen=True):
    """One charge or refund as the gateway holds it: what reconciliation compares."""

    kind: Literal["charge", "refund"]
    gateway_reference: str
    idempotency_key: str
    status: TransactionStatus
    amount: Decimal
    currency: str
    created_at: datetime
    charge_reference: str | None = None  # refunds: the charge refunded
    # Charges: bill_id, customer_id, workflow_id when the service made it.
    metadata: dict[str, str] = {}
    method_type: str | None = None
    authorization_code: str | None = None
    decline_code: str | None = None
    decline_kind: DeclineKind | None = None
    message: str = ""

    @field_validator("created_at")
    @classmethod
    def _aware_utc(cls, value: datetime) -> datetime:
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("created_at needs a time zone")
        return value.astimezone(UTC)


class TransactionPage(BaseModel, frozen=True):
    """Transactions oldest first; `next_cursor` is None on the last page."""

    transactions: list[GatewayTransaction]
    next_cursor: str | None


class PaymentGateway(Protocol):
    """A gateway adapter: the simulator today, Stripe or PayPal later."""

    async def charge(self, request: ChargeRequest) -> ChargeOutcome:
        """Declines are outcomes (status FAILED); transient errors raise DependencyUnavailable."""
        ...

    async def refund(self, request: RefundRequest) -> RefundOutcome:
        """Raises RefundRefused when the gateway refuses (over-refund, charge not captured)."""
        ...

    async def get_charge(self, gateway_reference: str) -> ChargeOutcome:
        """The charge as the gateway knows it now (e.g. a settled bank transfer)."""
        ...

    async def find_charge(self, idempotency_key: str) -> ChargeOutcome | None:
        """The charge made under this key as the gateway knows it now; None: it never happened."""
        ...

    async def find_refund(self, idempotency_key: str) -> RefundOutcome | None:
        """The refund made under this key; None: the gateway holds no refund under it."""
        ...

    async def list_transactions(
        self, since: datetime, cursor: str | None = None, limit: int = 100
    ) -> TransactionPage:
        """Every charge and refund created at or after `since`, oldest first, paged."""
        ...


_CARD_SHAPE = re.compile(r"^\d(?:[ -]?\d){12,18}$")


def looks_like_card_number(value: str) -> bool:
    """True for 13-19 digits (spaces or dashes between them allowed) passing the Luhn check."""
    text = value.strip()
    if not _CARD_SHAPE.match(text):
        return False
    digits = [int(ch) for ch in text if ch.isdigit()]
    total = 0
    for position, digit in enumerate(reversed(digits)):
        if position % 2 == 1:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0
