"""One request's events laid out as `record_usage`'s column arrays, in one pass: no
per-event model, cost or Decimal on the way in.

A group is the events of one customer, kind, period and tier: they share one unit price,
looked up once (catalog and contract terms), and Postgres multiplies it out exactly. An
event dated before its customer's current tier waits until the tier history is read.
`occurred_at` travels as float seconds since the epoch (asyncpg encodes a float array
several times faster than a timestamptz one); Postgres's to_timestamp rounds it back to the
exact microsecond for any moment before 2255, and no event is ever dated after now + 5 min.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Literal

from api.ingest.decode import EventIn
from api.ingest.plans import StampedPlan
from billing.catalog import PriceCatalog, Tier, UsageKind
from billing.metering import FUTURE_TOLERANCE, TierChange, check_occurred_at, pricing_tier
from billing.periods import period_of
from store.limiter import Reservation
from store.usage import Group, UsageWrite

Status = Literal["inserted", "duplicate", "billed", "rate_limited"]
API_CALL = UsageKind.API_CALL
Limited = list[tuple[str, int, int]]


class Columns:
    """The rows of one request; `status` holds the few decided one by one (rare)."""

    def __init__(
        self, catalog: PriceCatalog, now: datetime, plans: Mapping[str, StampedPlan]
    ) -> None:
        self.catalog = catalog
        self.plans = plans
        self.now = now.astimezone(UTC)
        self._latest = self.now + FUTURE_TOLERANCE
        self._now_period = period_of(self.now)
        self._now_seconds = self.now.timestamp()
        self._periods: dict[tuple[int, int], str] = {}
        self._index: dict[tuple[str, UsageKind, str, Tier], int] = {}
        self._later: list[tuple[EventIn, StampedPlan, datetime]] = []
        self.groups: list[Group] = []
        self.sent: list[list[int]] = []  # per group [events, quantity]
        self.events: list[EventIn] = []
        self.e_group: list[int] = []  # 1-based
        self.e_event_id: list[str] = []
        self.e_quantity: list[int] = []
        self.e_at: list[float] = []
        self.status: dict[int, Status] = {}

    def dated(self, event: EventIn) -> datetime | None:
        """Its UTC moment, None for "now"; InvalidInput for one no request may carry."""
        at = event.occurred_at
        if at is None:
            return None
        if at.tzinfo is not UTC:
            at = at.astimezone(UTC)
        if at > self._latest:
            check_occurred_at(at, self.now)  # raises, with the message
        self._period(at)  # InvalidInput for a year outside 2000-2999
        return at

    def add(self, event: EventIn, stamped: StampedPlan, at: datetime | None) -> None:
        """A started event (see `dated`), into the group of the tier in force at `at`."""
        plan = stamped.plan
        if at is None:
            self._row(event, plan.tier, self._now_period, self._now_seconds)
            return
        since = plan.tier_since
        if since is not None and at < since:
            self._later.append((event, stamped, at))
            return
        self._row(event, plan.tier, self._period(at), at.timestamp())

    def waiting(self) -> dict[str, datetime]:
        """Customer -> its earliest event dated before its current tier."""
        since: dict[str, datetime] = {}
        for event, _, at in self._later:
            since[event.customer_id] = min(since.get(event.customer_id, at), at)
        return since

    def price_waiting(self, histories: Mapping[str, Sequence[TierChange]]) -> None:
        for event, stamped, at in self._later:
            history = histories.get(event.customer_id, ())
            tier = pricing_tier(stamped.plan, at, True, history)
            self._row(event, tier, self._period(at), at.timestamp())
        self._later.clear()

    def _period(self, at: datetime) -> str:
        month = (at.year, at.month)
        period = self._periods.get(month)
        if period is None:
            period = self._periods[month] = period_of(at)  # InvalidInput out of 2000-2999
        return period

    def _row(self, event: EventIn, tier: Tier, period: str, seconds: float) -> None:
        cid = event.customer_id
        key = (cid, event.kind, period, tier)
        g = self._index.get(key)
        if g is None:
            g = self._index[key] = len(self.groups)
            overrides = self.plans[cid].plan.overrides
            unit_price = self.catalog.unit_price(tier, event.kind, overrides)
            self.groups.append(Group(cid, event.kind, period, tier, unit_price))
            self.sent.append([0, 0])
        sent = self.sent[g]
        sent[0] += 1
        sent[1] += event.quantity
        self.events.append(event)
        self.e_group.append(g + 1)
        self.e_event_id.append(event.event_id)
        self.e_quantity.append(event.quantity)
        self.e_at.append(seconds)

    def period_of_row(self, row: int) -> str:
        return self.groups[self.e_group[row] - 1].period

    def rows_of(self, customer_id: str, kind: UsageKind) -> list[int]:
        return [
            row
            for row, g in enumerate(self.e_group)
            if self.groups[g - 1].customer_id == customer_id and self.groups[g - 1].kind is kind
        ]

    def write(self, key_hash: str | None) -> tuple[UsageWrite, list[int]]:
        """The call for the rows still undecided, and their row numbers in call order."""
        rows = [r for r in range(len(self.e_group)) if r not in self.status]
        e_group, e_event_id, e_quantity, e_at = (
            self.e_group,
            self.e_event_id,
            self.e_quantity,
            self.e_at,
        )
        if self.status:
            e_group = [e_group[r] for r in rows]
            e_event_id = [e_event_id[r] for r in rows]
            e_quantity = [e_quantity[r] for r in rows]
            e_at = [e_at[r] for r in rows]
        customers = list(dict.fromkeys(g.customer_id for g in self.groups))
        stamps = [self.plans[c].stamp for c in customers]
        call = UsageWrite(
            key_hash, customers, stamps, self.groups, e_group, e_event_id, e_quantity, e_at
        )
        return call, rows


def limits(cols: Columns) -> tuple[Limited, list[int]]:
    """(customer, api_call quantity, limit) of each limited customer, and per group the
    1-based position of the customer its live bump depends on (0: it does not)."""
    calls: dict[str, int] = defaultdict(int)
    for group, (_, quantity) in zip(cols.groups, cols.sent, strict=True):
        if group.kind is API_CALL:
            calls[group.customer_id] += quantity
    limited: Limited = []
    who: dict[str, int] = {}
    for cid, quantity in calls.items():
        limit = cols.plans[cid].plan.limit
        if limit is not None:
            limited.append((cid, quantity, limit))
            who[cid] = len(limited)
    deps = [who.get(g.customer_id, 0) if g.kind is API_CALL else 0 for g in cols.groups]
    return limited, deps


def unrecorded(
    cols: Columns,
    reservations: Mapping[str, Reservation],
    bumped: Sequence[int],
    inserted: Mapping[int, tuple[int, int]],
) -> tuple[list[tuple[Reservation, int]], dict[str, Reservation], list[tuple[int, Group, int]]]:
    """What Postgres did not record: (reservation, unused quantity) pairs, the reservations
    as settled, and (0, group, quantity) live amounts to take back."""
    recorded: dict[str, int] = defaultdict(int)
    for g, (_, quantity) in inserted.items():
        if cols.groups[g].kind is API_CALL:
            recorded[cols.groups[g].customer_id] += quantity
    unused: list[tuple[Reservation, int]] = []
    settled: dict[str, Reservation] = {}
    for cid, held in reservations.items():
        spare = held.quantity - recorded[cid]
        if held.allowed and spare > 0:
            unused.append((held, spare))
            settled[cid] = dataclasses.replace(held, count=held.count - spare)
    back = [(0, cols.groups[g], cols.sent[g][1] - inserted.get(g, (0, 0))[1]) for g in bumped]
    return unused, settled, [b for b in back if b[2]]


def crossed(
    cols: Columns, inserted: Mapping[int, tuple[int, int]], reservations: Mapping[str, Reservation]
) -> set[str]:
    """Convertible free customers whose recorded api_calls took this hour past the free limit."""
    out: set[str] = set()
    for g in inserted:
        cid = cols.groups[g].customer_id
        plan = cols.plans[cid].plan
        held = reservations.get(cid)
        if cols.groups[g].kind is API_CALL and plan.converts and held is not None:
            if plan.free_limit is not None and held.count > plan.free_limit:
                out.add(cid)
    return out
