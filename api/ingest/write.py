"""One request's events dated, priced once per group, and laid out as `record_usage`'s
column arrays: no per-event model, cost or Decimal on the way in.

A group is the events of one customer, kind, period and tier: they share one unit price,
looked up once (catalog and contract terms), and Postgres multiplies it out exactly.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Literal

from api.ingest.decode import EventIn
from api.ingest.plans import StampedPlan
from billing.catalog import PriceCatalog, UsageKind
from billing.metering import TierChange, check_occurred_at, predates_tier, pricing_tier
from billing.periods import period_of
from store.limiter import Reservation
from store.usage import Group, UsageWrite

Status = Literal["inserted", "duplicate", "billed", "rate_limited"]
API_CALL = UsageKind.API_CALL
Limited = list[tuple[str, int, int]]


@dataclass(slots=True)
class Item:
    """One event on its way in; `status` is set only where it is decided per event."""

    event: EventIn
    stamped: StampedPlan
    occurred_at: datetime
    period: str
    client_dated: bool
    group: int = 0
    status: Status | None = None

    @property
    def predates_tier(self) -> bool:
        return predates_tier(self.stamped.plan, self.occurred_at, self.client_dated)


class Dater:
    """Dates events against one `now`; the period of each UTC month is spelled once."""

    def __init__(self, now: datetime) -> None:
        self.now = now.astimezone(UTC)
        self._periods: dict[tuple[int, int], str] = {}

    def date(self, stamped: StampedPlan, event: EventIn) -> Item:
        """InvalidInput for a moment no request may carry (far future, out of range)."""
        at = event.utc_occurred_at()
        occurred_at = self.now if at is None else check_occurred_at(at, self.now)
        month = (occurred_at.year, occurred_at.month)
        period = self._periods.get(month)
        if period is None:
            period = self._periods[month] = period_of(occurred_at)
        return Item(event, stamped, occurred_at, period, at is not None)


@dataclass(slots=True)
class Priced:
    """The groups of a request and, per group, the events and quantity sent."""

    groups: list[Group] = field(default_factory=list)
    sent: list[list[int]] = field(default_factory=list)  # [events, quantity]


def price(
    catalog: PriceCatalog, items: Sequence[Item], histories: Mapping[str, Sequence[TierChange]]
) -> Priced:
    """Each event into the group of the tier in force when it occurred; a price per group."""
    out = Priced()
    index: dict[tuple[str, UsageKind, str, str], int] = {}
    for item in items:
        plan = item.stamped.plan
        event = item.event
        tier = plan.tier
        if item.client_dated and item.predates_tier:
            tier = pricing_tier(plan, item.occurred_at, True, histories.get(plan.customer_id, ()))
        key = (event.customer_id, event.kind, item.period, tier)
        g = index.get(key)
        if g is None:
            g = index[key] = len(out.groups)
            unit_price: Decimal = catalog.unit_price(tier, event.kind, plan.overrides)
            out.groups.append(Group(event.customer_id, event.kind, item.period, tier, unit_price))
            out.sent.append([0, 0])
        sent = out.sent[g]
        sent[0] += 1
        sent[1] += event.quantity
        item.group = g
    return out


def usage_write(
    caller_key_hash: str | None, priced: Priced, items: Sequence[Item]
) -> tuple[UsageWrite, list[Item]]:
    """The call for the items still undecided, and those items in the call's event order."""
    stamps: dict[str, str] = {}
    sent: list[Item] = []
    e_group: list[int] = []
    e_event_id: list[str] = []
    e_quantity: list[int] = []
    e_occurred_at: list[datetime] = []
    for item in items:
        if item.status is not None:
            continue
        event = item.event
        stamps[event.customer_id] = item.stamped.stamp
        sent.append(item)
        e_group.append(item.group + 1)
        e_event_id.append(event.event_id)
        e_quantity.append(event.quantity)
        e_occurred_at.append(item.occurred_at)
    call = UsageWrite(
        caller_key_hash,
        list(stamps),
        list(stamps.values()),
        priced.groups,
        e_group,
        e_event_id,
        e_quantity,
        e_occurred_at,
    )
    return call, sent


def limits(priced: Priced, plans: Mapping[str, StampedPlan]) -> tuple[Limited, list[int]]:
    """(customer, api_call quantity, limit) of each limited customer, and per group the
    1-based position of the customer its live bump depends on (0: it does not)."""
    calls: dict[str, int] = defaultdict(int)
    for group, (_, quantity) in zip(priced.groups, priced.sent, strict=True):
        if group.kind is API_CALL:
            calls[group.customer_id] += quantity
    limited: Limited = []
    who: dict[str, int] = {}
    for cid, quantity in calls.items():
        limit = plans[cid].plan.limit
        if limit is not None:
            limited.append((cid, quantity, limit))
            who[cid] = len(limited)
    deps = [who.get(g.customer_id, 0) if g.kind is API_CALL else 0 for g in priced.groups]
    return limited, deps


def unrecorded(
    priced: Priced,
    reservations: Mapping[str, Reservation],
    bumped: Sequence[int],
    inserted: Mapping[int, tuple[int, int]],
) -> tuple[list[tuple[Reservation, int]], dict[str, Reservation], list[tuple[int, Group, int]]]:
    """What Postgres did not record: (reservation, unused quantity) pairs, the reservations
    as settled, and (0, group, quantity) live amounts to take back."""
    recorded: dict[str, int] = defaultdict(int)
    for g, (_, quantity) in inserted.items():
        if priced.groups[g].kind is API_CALL:
            recorded[priced.groups[g].customer_id] += quantity
    unused: list[tuple[Reservation, int]] = []
    settled: dict[str, Reservation] = {}
    for cid, held in reservations.items():
        spare = held.quantity - recorded[cid]
        if held.allowed and spare > 0:
            unused.append((held, spare))
            settled[cid] = dataclasses.replace(held, count=held.count - spare)
    back = [(0, priced.groups[g], priced.sent[g][1] - inserted.get(g, (0, 0))[1]) for g in bumped]
    return unused, settled, [b for b in back if b[2]]


def crossed(
    priced: Priced,
    inserted: Mapping[int, tuple[int, int]],
    plans: Mapping[str, StampedPlan],
    reservations: Mapping[str, Reservation],
) -> set[str]:
    """Convertible free customers whose recorded api_calls took this hour past the free limit."""
    out: set[str] = set()
    for g in inserted:
        cid = priced.groups[g].customer_id
        plan = plans[cid].plan
        held = reservations.get(cid)
        if priced.groups[g].kind is API_CALL and plan.converts and held is not None:
            if plan.free_limit is not None and held.count > plan.free_limit:
                out.add(cid)
    return out
