"""Request and answer bodies of the customer and usage routes; money and rates are strings.

Each rule a route enforces is stated in the OpenAPI schema too (tests/unit/test_openapi.py
holds them together). Where the rule is checked elsewhere than by the model (by the domain,
whose message is better, or by Postgres, which refuses a NUL in text), the schema states it
without enforcing it twice: `json_schema_extra` / `stated(...)`. What JSON Schema cannot say:
a `started_at` or `occurred_at` ahead of the server's clock, usage before the customer's
`started_at`, and anything that depends on what is stored (an unknown id is a 404; an
unknown paging cursor of /v1/events or of an endpoint's deliveries is a 422).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from fastapi import Path, Query
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, WithJsonSchema, field_validator

from billing.catalog import Tier
from billing.error_body import ErrorBody
from billing.metering import UsageEventIn
from billing.payments import PaymentMethodType

MAX_BATCH = 5_000
# Postgres text cannot hold a NUL: refused (422) wherever text reaches the store.
NO_NUL = r"^[^\x00]*$"
# What billing.periods.parse_period accepts: years 2000-2999, months 01-12.
PERIOD_PATTERN = r"^2[0-9]{3}-(0[1-9]|1[0-2])$"
# A fraction in [0, 1) with at most 6 decimals (numeric(7,6)), as a decimal string.
TAX_RATE_PATTERN = r"^0(\.[0-9]{1,6})?$"
GATEWAY_TOKEN = re.compile(r"^tok_[A-Za-z0-9_]{1,64}$")
_EMAIL = re.compile(r"[^@\s\x00]+@[^@\s\x00]+\.[^@\s\x00]+")
EMAIL_PATTERN = f"^{_EMAIL.pattern}$"


def stated(**rules: Any) -> Callable[[dict[str, Any]], None]:
    """`json_schema_extra` that states `rules` on the non-null branch of a field's schema
    (the schema of `str | None` is an anyOf): documented there, checked elsewhere."""

    def extra(schema: dict[str, Any]) -> None:
        branches = [b for b in schema.get("anyOf", [schema]) if b.get("type") != "null"]
        for branch in branches or [schema]:
            branch.update(rules)

    return extra


def decimal_string(pattern: str, example: str) -> WithJsonSchema:
    """A Decimal field documented as the decimal string the API speaks (money, rates)."""
    return WithJsonSchema({"type": "string", "pattern": pattern, "examples": [example]})


def text_query(max_length: int, description: str | None = None, **rules: Any) -> Any:
    """An optional text query parameter (an id, a cursor): no NUL, at most `max_length`,
    and the `rules` stated (checked by the route)."""
    return Query(
        max_length=max_length,
        description=description,
        json_schema_extra=stated(pattern=NO_NUL, **rules),
    )


# A paging cursor that must name a row: never empty (an unknown one is a 422 all the same).
CURSOR_DESCRIPTION = "The last id seen (the `next_after` of the page before)"


# An id in a path: anything without a NUL; one that names nothing is a 404.
PathId = Annotated[str, Path(json_schema_extra=stated(pattern=NO_NUL))]
PeriodQuery = Annotated[
    str,
    Query(
        description="The billing period, YYYY-MM",
        examples=["2026-10"],
        json_schema_extra=stated(pattern=PERIOD_PATTERN),
    ),
]


ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": description}
    for status, description in (
        (400, "Malformed JSON"),
        (401, "Missing or unknown key"),
        (403, "The key may not reach this customer or route"),
        (404, "Unknown customer, bill, or other id the request names"),
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
    """`started_at` may not be ahead of the server's clock (not statable in JSON Schema)."""

    name: str = Field(min_length=1, max_length=200, json_schema_extra=stated(pattern=NO_NUL))
    email: str = Field(
        min_length=3,
        max_length=320,
        examples=["ada@example.com"],
        json_schema_extra=stated(pattern=EMAIL_PATTERN),
    )
    tier: Tier = Tier.FREE
    tax_rate: (
        Annotated[
            Decimal,
            Field(ge=0, lt=1, max_digits=7, decimal_places=6),
            decimal_string(TAX_RATE_PATTERN, "0.0825"),
        ]
        | None
    ) = None
    auto_upgrade: bool = True
    started_at: AwareDatetime | None = Field(
        default=None, description="When the subscription began; not in the future"
    )

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
    token: str = Field(
        min_length=1,
        max_length=200,
        examples=["tok_success"],
        json_schema_extra=stated(pattern=GATEWAY_TOKEN.pattern),
    )


class UsageRecorded(BaseModel):
    recorded: bool
    duplicate: bool


class UsageEventBody(UsageEventIn):
    """The domain's event, strict about unknown fields: a misspelt `occured_at` is an error.

    Also refused, and not statable in JSON Schema: an `occurred_at` more than 5 minutes
    ahead of the server's clock, or before the customer's `started_at`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    customer_id: str = Field(min_length=1, max_length=128, json_schema_extra=stated(pattern=NO_NUL))
    occurred_at: AwareDatetime | None = Field(
        default=None,
        description="When it happened (default: now); in a year 2000-2999, not in the future",
        json_schema_extra=stated(pattern="^2[0-9]{3}-"),
    )


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
