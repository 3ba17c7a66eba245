"""Usage events as they arrive, their validation, the tier they are priced at, their exact cost."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictInt, field_validator

from billing.catalog import ContractOverrides, PriceCatalog, Tier, UsageKind
from billing.errors import InvalidInput
from billing.money import exact_mul

MAX_QUANTITY = 1_000_000_000
# Clocks drift; an event a little ahead of ours is accepted, one far ahead is a client bug.
FUTURE_TOLERANCE = timedelta(minutes=5)


class UsageEventIn(BaseModel):
    """One usage event; `event_id` is the client's idempotency key per customer."""

    model_config = ConfigDict(frozen=True)

    event_id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$")
    customer_id: str = Field(min_length=1, max_length=128)
    kind: UsageKind
    # Strict: true, 1.0 and "1" are client mistakes, not quantities.
    quantity: Annotated[StrictInt, Field(gt=0, le=MAX_QUANTITY)]
    occurred_at: AwareDatetime | None = None

    @field_validator("occurred_at")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return None if value is None else value.astimezone(UTC)


def check_occurred_at(occurred_at: datetime | None, now: datetime) -> datetime:
    """When the usage happened, in UTC: `now` if absent; refused if more than 5 min ahead."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise InvalidInput("now must carry a timezone")
    if occurred_at is None:
        return now.astimezone(UTC)
    if occurred_at.tzinfo is None or occurred_at.utcoffset() is None:
        raise InvalidInput(f"occurred_at {occurred_at.isoformat()} has no timezone")
    if occurred_at > now + FUTURE_TOLERANCE:
        raise InvalidInput(
            f"occurred_at {occurred_at.isoformat()} is more than "
            f"{FUTURE_TOLERANCE // timedelta(minutes=1)} minutes in the future "
            f"(server time {now.astimezone(UTC).isoformat()})"
        )
    return occurred_at.astimezone(UTC)


def event_cost(
    catalog: PriceCatalog,
    tier: Tier,
    kind: UsageKind,
    quantity: int,
    overrides: ContractOverrides | None = None,
) -> tuple[Decimal, Decimal]:
    """(unit price at `tier`, quantity * unit price) exactly; lines round later, once."""
    unit_price = catalog.unit_price(tier, kind, overrides)
    return unit_price, exact_mul(quantity, unit_price)


def check_subscribed(occurred_at: datetime, started_at: datetime) -> None:
    """Usage before the subscription began falls in no billable period: refused, never stored."""
    if occurred_at < started_at:
        raise InvalidInput(
            f"occurred_at {occurred_at.isoformat()} is before the customer's started_at "
            f"{started_at.isoformat()}: usage before the subscription began cannot be billed"
        )


@dataclass(frozen=True)
class TierChange:
    """From `effective_at` on, the customer is on `to_tier` (until the next change)."""

    effective_at: datetime
    from_tier: Tier
    to_tier: Tier


def tier_at(changes: Sequence[TierChange], at: datetime) -> Tier | None:
    """The tier in force at `at`, given a customer's changes in the order they were made.

    The last change effective at or before `at` wins (of two at the same instant, the one made
    later); before the first change, the tier it changed from; None with no history at all.
    """
    if not changes:
        return None
    # Stable: changes at the same instant keep the order they were made in.
    ordered = sorted(changes, key=_effective_at)
    index = bisect_right(ordered, at, key=_effective_at)
    return ordered[index - 1].to_tier if index else ordered[0].from_tier


def _effective_at(change: TierChange) -> datetime:
    return change.effective_at
