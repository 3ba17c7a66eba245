"""The ingestion steps, once for both usage routes: one Redis and one Postgres round trip.

For a request: the caller and the customers' plans (cached, api/ingest/plans.py), each event
dated and grouped at the tier in force when it occurred (write.py), then

1. Redis, one EVALSHA: every limited customer's api_call quantity reserved under its hourly
   limit and the live counters bumped for what was admitted (store/limiter.py);
2. Postgres, one call of `record_usage`: the plans' stamps, the billed-period rule and the
   insert, in one transaction (store/usage.py);
3. whatever Postgres did not record is given back to Redis, and a convertible free customer
   who crossed the free limit starts its upgrade, before the answer.

A plan found stale in step 2 (or at a refusal) is given back, forgotten and read afresh.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from api.deps import AppState
from api.ingest.conversion import convert
from api.ingest.decode import EventIn
from api.ingest.notices import notify_limits
from api.ingest.plans import Caller, PlanCache, StampedPlan
from api.ingest.write import API_CALL, Columns, Status, crossed, limits, unrecorded
from billing.catalog import DEFAULT_CATALOG, PriceCatalog
from billing.errors import (
    BillingError,
    DependencyUnavailable,
    InvalidInput,
    NotFound,
    Unauthenticated,
)
from billing.metering import check_subscribed
from observability import metrics
from store import customers as customer_store
from store import usage as usage_store
from store.limiter import RateLimiter, Reservation

log = logging.getLogger("api.usage")

_ATTEMPTS = 3  # a plan that changes under every attempt is a 503, not a loop
Plans = dict[str, StampedPlan]
Inserted = dict[int, tuple[int, int]]


class _Stale(Exception):
    """Plans that are no longer current; everything reserved was given back."""

    def __init__(self, customers: list[str]) -> None:
        super().__init__(customers)
        self.customers = customers


@dataclass(slots=True)
class Recording:
    """What one request recorded: counts, per-row decisions, each customer's reservation."""

    cols: Columns
    inserted: int = 0
    duplicates: int = 0  # in-batch repeats included
    refused: list[tuple[EventIn, BillingError]] = field(default_factory=list)
    reservations: dict[str, Reservation] = field(default_factory=dict)

    def status(self) -> Status:
        """For a request of one event."""
        decided = self.cols.status.get(0)
        if decided is not None:
            return decided
        return "inserted" if self.inserted else "duplicate"


class IngestService:
    def __init__(
        self, state: AppState, limiter: RateLimiter, catalog: PriceCatalog = DEFAULT_CATALOG
    ) -> None:
        self.state = state
        self.limiter = limiter
        self.catalog = catalog
        self.plans = PlanCache(
            state.pool, catalog, state.settings.billing_api_key.get_secret_value()
        )

    async def caller(self, authorization: str | None) -> Caller:
        return await self.plans.caller(authorization)

    async def record_one(self, caller: Caller, event: EventIn) -> Recording:
        """201/200/409/429 material for one event; NotFound, InvalidInput raised."""
        caller.authorize(event.customer_id)
        for _ in range(_ATTEMPTS):
            plans = await self.plans.plans([event.customer_id])
            stamped = plans.get(event.customer_id)
            if stamped is None:
                raise NotFound(f"no customer {event.customer_id!r}")
            cols = Columns(self.catalog, self.limiter.clock(), plans)
            at = cols.dated(event)
            if at is not None:
                check_subscribed(at, stamped.plan.started_at)
            cols.add(event, stamped, at)
            try:
                return await self._record(caller, Recording(cols))
            except _Stale as stale:
                self.plans.forget(stale.customers)
        raise DependencyUnavailable("the customer's terms changed under every try; retry")

    async def record_batch(self, caller: Caller, events: Sequence[EventIn]) -> Recording:
        """A malformed event refuses the batch (InvalidInput); others are refused one by one."""
        customer_ids = list(dict.fromkeys(e.customer_id for e in events))
        for cid in customer_ids:
            caller.authorize(cid)
        for _ in range(_ATTEMPTS):
            plans = await self.plans.plans(customer_ids)
            out = self._sort(plans, events)
            try:
                return await self._record(caller, out)
            except _Stale as stale:
                self.plans.forget(stale.customers)
        raise DependencyUnavailable("the customers' terms changed under every try; retry")

    def _sort(self, plans: Plans, events: Sequence[EventIn]) -> Recording:
        """Rows in one pass; in-batch repeats counted, unknown and unstarted ones refused."""
        out = Recording(Columns(self.catalog, self.limiter.clock(), plans))
        dated, add = out.cols.dated, out.cols.add
        seen: set[str] = set()  # strings, not tuples: nothing here for the GC to track
        for index, event in enumerate(events):
            key = f"{event.customer_id}\x00{event.event_id}"  # an event_id has no NUL
            if key in seen:
                out.duplicates += 1
                continue
            seen.add(key)
            stamped = plans.get(event.customer_id)
            if stamped is None:
                metrics.usage_events(["unknown_customer"])
                out.refused.append((event, NotFound(f"no customer {event.customer_id!r}")))
                continue
            try:
                at = dated(event)
            except InvalidInput as exc:
                raise InvalidInput(f"events.{index}: {exc.message}") from None
            if at is not None and at < stamped.plan.started_at:
                try:
                    check_subscribed(at, stamped.plan.started_at)
                except InvalidInput as exc:  # this event's fault, not the batch's
                    out.refused.append((event, exc))
                    continue
            add(event, stamped, at)
        if out.duplicates:
            metrics.usage_events(["duplicate"], count=out.duplicates)
        return out

    async def _record(self, caller: Caller, out: Recording) -> Recording:
        """Steps 1-3; raises _Stale (everything given back) when a plan is not current."""
        cols = out.cols
        waiting = cols.waiting()
        if waiting:  # one read of the tier history, only for events before their tier
            cols.price_waiting(await customer_store.tier_histories(self.state.pool, waiting))
        if not cols.e_group:
            return out
        limited, deps = limits(cols)
        out.reservations, admitted = await self._admit(limited, deps, cols)
        # What the admission bumped: every group but a refused customer's api_calls.
        allowed = [True, *(r.allowed for r in out.reservations.values())]
        bumped = [g for g, w in enumerate(deps) if admitted and allowed[w]]
        if not all(allowed):
            try:
                await self._refusals(out)
            except _Stale:
                await self._give_back(out, bumped, {})
                raise
        call, rows = cols.write(caller.key_hash)
        inserted: Inserted = {}
        billed = 0
        if rows:
            try:
                written = await usage_store.record(self.state.pool, call)
            except BaseException:
                await self._give_back(out, bumped, {})
                raise
            if written.unauthorized or written.stale:
                await self._give_back(out, bumped, {})
                if written.unauthorized:
                    self.plans.forget_key(caller.key_hash or "")
                    raise Unauthenticated("the API key is not valid")
                raise _Stale([call.customers[i] for i in written.stale])
            inserted = _every(cols) if written.every else written.inserted
            billed = len(written.billed)
            for n in written.known:
                cols.status[rows[n]] = "duplicate"
            for n in written.billed:
                cols.status[rows[n]] = "billed"
        out.inserted = sum(n for n, _ in inserted.values())
        duplicates = len(rows) - out.inserted - billed
        out.duplicates += duplicates
        await self._give_back(out, bumped, inserted)
        for cid in crossed(cols, inserted, out.reservations):
            await convert(self.state, self.limiter, cid)
        for status, count in (("inserted", out.inserted), ("duplicate", duplicates)):
            if count:
                metrics.usage_events([status], count=count)
        if billed:
            metrics.usage_events(["billed"], count=billed)
        await notify_limits(self.state.pool, out.reservations, cols.plans)
        return out

    async def _admit(
        self, limited: list[tuple[str, int, int]], deps: list[int], cols: Columns
    ) -> tuple[dict[str, Reservation], bool]:
        """Reservations by customer, and whether Redis took them (and the live bumps)."""
        live = usage_store.live_bumps(
            (w, g, sent[1]) for w, g, sent in zip(deps, cols.groups, cols.sent, strict=True)
        )
        try:
            answers = await self.limiter.admit(limited, live, usage_store.live_ttl_s())
        except DependencyUnavailable:
            if not limited:
                log.warning("live counters skipped: Redis unreachable (rebuildable from Postgres)")
                return {}, False
            policy = self.state.settings.rate_limit_redis_down
            for cid, _, _ in limited:
                metrics.limiter_decision(f"redis_down_{policy}", cols.plans[cid].plan.tier.value)
            if policy == "deny":
                raise
            ids = ", ".join(cid for cid, _, _ in limited)
            log.warning("rate limiter unreachable: recording %s's usage unchecked", ids)
            return {}, False
        reservations = {}
        for (cid, _, _), reservation in zip(limited, answers, strict=True):
            decision = "allowed" if reservation.allowed else "limited"
            metrics.limiter_decision(decision, cols.plans[cid].plan.tier.value)
            reservations[cid] = reservation
        return reservations, True

    async def _refusals(self, out: Recording) -> None:
        """A refused customer's api_calls: duplicates if recorded before, else rate_limited."""
        cols, stale = out.cols, []
        for cid, held in out.reservations.items():
            if held.allowed:
                continue
            rows = cols.rows_of(cid, API_CALL)
            ids = [cols.e_event_id[r] for r in rows]
            stamp, known = await usage_store.refusal_facts(self.state.pool, cid, ids)
            if stamp != cols.plans[cid].stamp:
                stale.append(cid)
                continue
            for r in rows:
                cols.status[r] = "duplicate" if cols.e_event_id[r] in known else "rate_limited"
            out.duplicates += len(known)
            metrics.usage_events(["duplicate"], count=len(known))
            metrics.usage_events(["rate_limited"], count=len(rows) - len(known))
        if stale:
            raise _Stale(stale)

    async def _give_back(self, out: Recording, bumped: list[int], inserted: Inserted) -> None:
        """What Postgres did not record, back to the hour counters and the live counters."""
        unused, settled, back = unrecorded(out.cols, out.reservations, bumped, inserted)
        out.reservations.update(settled)
        try:
            await self.limiter.give_back(unused, usage_store.live_bumps(back))
        except DependencyUnavailable:
            log.warning("could not give back unrecorded usage to Redis: %s", unused)


def _every(cols: Columns) -> Inserted:
    """Per group (events, quantity) when every row of the call was inserted."""
    if not cols.status:  # the call is every row: the sent counts
        return {g: (n, q) for g, (n, q) in enumerate(cols.sent) if n}
    counts: dict[int, list[int]] = {}
    for row, g in enumerate(cols.e_group):
        if row not in cols.status:
            entry = counts.setdefault(g - 1, [0, 0])
            entry[0] += 1
            entry[1] += cols.e_quantity[row]
    return {g: (n, q) for g, (n, q) in counts.items()}
