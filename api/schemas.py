"""Request and answer bodies of the customer and usage routes; money and rates are strings."""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from billing.catalog import Tier
from billing.metering import UsageEventIn
from billing.payments import PaymentMethodType

MAX_BATCH = 5_000
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


class ErrorDetail(BaseModel):
    code: str = Field(examples=["invalid_input"])
    message: str


class ErrorBody(BaseModel):
    """Every refusal, FastAPI's own validation errors included."""

    error: ErrorDetail


ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": description}
    for status, description in (
        (400, "Malformed JSON"),
        (401, "Missing or unknown key"),
        (403, "The key may not reach this customer or route"),
        (404, "Unknown customer"),
        (422, "Invalid input; the message names each field"),
        (503, "Postgres, Redis or Temporal is unavailable: retry after Retry-After"),
    )
}

CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorBody, "description": "Conflicts with the current state; says why"}
}


class Body(BaseModel):
    """Unknown fields are refused: a misspelt `auto_upgrde` must not be silently ignored."""

    model_config = ConfigDict(extra="forbid")


class CustomerCreate(Body):
    name: str = Field(min_length=1, max_length=200)
    email: str = Field(min_length=3, max_length=320, examples=["ada@example.com"])
    tier: Tier = Tier.FREE
    tax_rate: Decimal | None = Field(default=None, ge=0, lt=1, max_digits=7, decimal_places=6)
    auto_upgrade: bool = True
    started_at: AwareDatetime | None = None

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        # Deliberately light: the address is the customer's to get right; this catches typos.
        if _EMAIL.fullmatch(value) is None:
            raise ValueError("not an email address")
        return value


class PaymentMethodOut(BaseModel):
    id: str
    type: str
    created_at: datetime


class CustomerOut(BaseModel):
    id: str
    name: str
    email: str
    tier: str
    status: str
    auto_upgrade: bool
    tax_rate: str = Field(examples=["0.0825"])
    currency: str
    started_at: datetime
    created_at: datetime
    payment_method: PaymentMethodOut | None


class CustomerCreated(CustomerOut):
    api_key: str = Field(description="The customer key; shown once, stored only as a hash")


class CustomerPage(BaseModel):
    customers: list[CustomerOut]
    next_after: str | None = Field(description="Pass as `after` for the next page; null at end")


class PaymentMethodCreate(Body):
    type: PaymentMethodType
    # Checked in the route, so a card number gets its own code and is never echoed.
    token: str = Field(min_length=1, max_length=200, examples=["tok_success"])


class UsageRecorded(BaseModel):
    recorded: bool
    duplicate: bool


class UsageEventBody(UsageEventIn):
    """The domain's event, strict about unknown fields: a misspelt `occured_at` is an error."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class UsageBatch(Body):
    events: list[UsageEventBody] = Field(min_length=1, max_length=MAX_BATCH)


class RejectedEvent(BaseModel):
    event_id: str
    customer_id: str
    error: str = Field(description="The error code, e.g. period_already_billed")
    message: str


class UsageBatchResult(BaseModel):
    accepted: int
    duplicates: int
    rejected: list[RejectedEvent]


class KindTotal(BaseModel):
    quantity: int
    cost: str = Field(examples=["12.34"])


class UsageTotals(BaseModel):
    period: str
    customer_id: str
    currency: str
    totals: dict[str, KindTotal]
    total_cost: str = Field(examples=["12.34"])
