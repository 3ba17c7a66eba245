"""Usage events as they arrive, their validation, the tier they are priced at, their exact cost,
how a customer's usage is limited, and the one way usage cost is rounded (bills and totals)."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictInt, field_validator

from billing.catalog import AUTO_UPGRADE_TIER, ContractOverrides, PriceCatalog, Tier, UsageKind
from billing.errors import InvalidInput
from billing.events import EventType
from billing.money import exact_mul, round_money

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


@dataclass(frozen=True, slots=True)
class UsagePlan:
    """How a customer's usage is limited now, and the terms it is priced by."""

    customer_id: str
    tier: Tier
    overrides: ContractOverrides
    started_at: datetime
    tier_since: datetime | None  # when the current tier took effect; None without history
    limit: int | None  # the hourly api_call limit applied; None is no check
    free_limit: int | None  # a convertible free customer converts above this
    converts: bool


def plan_for(
    catalog: PriceCatalog,
    *,
    customer_id: str,
    tier: Tier,
    overrides: ContractOverrides,
    started_at: datetime,
    tier_since: datetime | None,
    auto_upgrade: bool,
    has_payment_method: bool,
    active: bool,
) -> UsagePlan:
    """A free customer who can convert is limited as AUTO_UPGRADE_TIER, so it is not refused
    at the free limit: the usage that crosses it is recorded and the upgrade starts."""
    converts = tier == Tier.FREE and auto_upgrade and has_payment_method and active
    return UsagePlan(
        customer_id=customer_id,
        tier=tier,
        overrides=overrides,
        started_at=started_at,
        tier_since=tier_since,
        limit=catalog.hourly_api_limit(AUTO_UPGRADE_TIER if converts else tier, overrides),
        free_limit=catalog.hourly_api_limit(Tier.FREE, overrides),
        converts=converts,
    )


def limited_message(
    catalog: PriceCatalog, plan: UsagePlan, *, limit: int, count: int, quantity: int
) -> str:
    """Why a 429: the limit, this hour's count, what does not fit, and what lifts the limit."""
    upgrade = f"POST /v1/customers/{plan.customer_id}/upgrade"
    if plan.tier == Tier.FREE:
        lifted = catalog.hourly_api_limit(AUTO_UPGRADE_TIER, plan.overrides)
        to = "no limit" if lifted is None else f"{lifted:,} per hour"
        lift = (
            f"upgrading to {AUTO_UPGRADE_TIER.value} lifts the limit to {to} (add a payment "
            f"method and keep auto_upgrade on, or {upgrade})"
        )
    else:
        lift = f"upgrading to a higher tier lifts the limit ({upgrade})"
    return (
        f"rate limited: the {plan.tier.value} tier allows {limit} API calls per hour; "
        f"{count} are counted this hour and these {quantity} do not fit; {lift}, or retry "
        "after the reset"
    )


def limit_notices(*, limit: int, count: int, allowed: bool) -> tuple[EventType, ...]:
    """The notices an hour of API calls is due: usage.limit_warning from 80% of the limit,
    with usage.limit_reached at 100% or a refusal; none without a limit (`limit` 0).
    `count` is the hour's count, this request's calls included when they were allowed."""
    if limit <= 0 or (allowed and count * 5 < limit * 4):
        return ()
    if not allowed or count >= limit:
        return (EventType.USAGE_LIMIT_WARNING, EventType.USAGE_LIMIT_REACHED)
    return (EventType.USAGE_LIMIT_WARNING,)


def predates_tier(plan: UsagePlan, occurred_at: datetime, client_dated: bool) -> bool:
    """Client-dated before the current tier took effect: priced from the tier history."""
    since = plan.tier_since
    return client_dated and since is not None and occurred_at < since


def pricing_tier(
    plan: UsagePlan, occurred_at: datetime, client_dated: bool, history: Sequence[TierChange]
) -> Tier:
    """The tier in force when the usage occurred: the current one unless it predates it."""
    if predates_tier(plan, occurred_at, client_dated):
        return tier_at(history, occurred_at) or plan.tier
    return plan.tier


def line_amount(quantity: int, unit_price: Decimal, currency: str) -> Decimal:
    """A usage line's amount: quantity x unit price, exact, then rounded once."""
    return round_money(exact_mul(quantity, unit_price), currency)


def kind_totals(
    groups: Iterable[tuple[UsageKind, Decimal, int]], currency: str
) -> dict[UsageKind, tuple[int, Decimal]]:
    """kind -> (quantity, cost) from (kind, unit price, quantity) groups, as the bill has it:
    one line per kind and unit price, each rounded once, a kind's cost the sum of its lines."""
    merged: dict[tuple[UsageKind, Decimal], int] = {}
    for kind, unit_price, quantity in groups:
        merged[kind, unit_price] = merged.get((kind, unit_price), 0) + quantity
    totals: dict[UsageKind, tuple[int, Decimal]] = {}
    for (kind, unit_price), quantity in merged.items():
        q, cost = totals.get(kind, (0, Decimal(0)))
        totals[kind] = (q + quantity, cost + line_amount(quantity, unit_price, currency))
    return totals
