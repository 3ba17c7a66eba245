"""Usage on its way in: dated, checked against the subscription, priced at the tier it occurred in.

An event without `occurred_at` happens now, under the current tier, whatever the clocks of
the API and of the worker that wrote the last tier change say; it is never before started_at.
A client-dated event at or after the customer's latest tier change (`tier_since`, read in the
same statement as the customer) is priced at the current tier too: no extra round trip. Only
events dated before that change read the tier history, in one query per request.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from billing.catalog import DEFAULT_CATALOG, ContractOverrides, Tier
from billing.metering import (
    TierChange,
    UsageEventIn,
    check_occurred_at,
    check_subscribed,
    event_cost,
    tier_at,
)
from billing.periods import period_of
from store import customers as customer_store
from store.customers import CustomerRow
from store.usage import PricedEvent


@dataclass(frozen=True)
class CustomerPlan:
    """How a customer's usage is limited right now, and priced when it happens now."""

    customer: CustomerRow
    tier: Tier
    overrides: ContractOverrides
    limit: int | None  # the hourly api_call limit applied; None is no check
    free_limit: int | None  # a convertible free customer converts above this
    converts: bool


def plan_for(row: CustomerRow) -> CustomerPlan:
    """A free customer who can convert is limited as starter, so it is not refused at 1,000."""
    tier = Tier(row.tier)
    overrides = ContractOverrides.model_validate(row.overrides)
    converts = (
        tier == Tier.FREE
        and row.auto_upgrade
        and row.payment_method is not None
        and row.status == "active"
    )
    return CustomerPlan(
        customer=row,
        tier=tier,
        overrides=overrides,
        limit=DEFAULT_CATALOG.hourly_api_limit(Tier.STARTER if converts else tier, overrides),
        free_limit=DEFAULT_CATALOG.hourly_api_limit(Tier.FREE, overrides),
        converts=converts,
    )


@dataclass(frozen=True)
class Dated:
    """An event with its moment and period settled, not yet priced."""

    plan: CustomerPlan
    event: UsageEventIn
    occurred_at: datetime
    period: str

    @property
    def before_current_tier(self) -> bool:
        """Client-dated before the latest tier change: priced from the history."""
        since = self.plan.customer.tier_since
        return self.event.occurred_at is not None and since is not None and self.occurred_at < since


def date(plan: CustomerPlan, event: UsageEventIn, now: datetime) -> Dated:
    """InvalidInput for a moment no request may carry (no timezone, far future, out of range)."""
    occurred_at = check_occurred_at(event.occurred_at, now)
    return Dated(plan, event, occurred_at, period_of(occurred_at))


def check_started(dated: Dated) -> None:
    """InvalidInput for client-dated usage before the customer's started_at."""
    if dated.event.occurred_at is not None:
        check_subscribed(dated.occurred_at, dated.plan.customer.started_at)


async def price_all(pool: asyncpg.Pool, events: Sequence[Dated]) -> list[PricedEvent]:
    """Each event at the tier in force when it occurred; one history read for those that need it."""
    since: dict[str, datetime] = {}
    for d in events:
        if d.before_current_tier:
            cid = d.plan.customer.id
            since[cid] = min(since.get(cid, d.occurred_at), d.occurred_at)
    histories = await customer_store.tier_histories(pool, since) if since else {}
    return [price(d, histories.get(d.plan.customer.id, [])) for d in events]


def price(dated: Dated, history: Sequence[TierChange]) -> PricedEvent:
    """At the current tier, unless the event predates it and the history says otherwise."""
    plan, event = dated.plan, dated.event
    tier = plan.tier
    if dated.before_current_tier:
        tier = tier_at(history, dated.occurred_at) or tier
    # Contract overrides are the customer's: they apply whenever enterprise was in force.
    unit_price, cost = event_cost(DEFAULT_CATALOG, tier, event.kind, event.quantity, plan.overrides)
    return PricedEvent(
        customer_id=event.customer_id,
        event_id=event.event_id,
        kind=event.kind.value,
        quantity=event.quantity,
        occurred_at=dated.occurred_at,
        period=dated.period,
        tier=tier.value,
        unit_price=unit_price,
        cost=cost,
    )
