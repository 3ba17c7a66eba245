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
from datetime import datetime

from api.deps import AppState
from api.ingest.conversion import convert
from api.ingest.decode import EventIn
from api.ingest.plans import Caller, PlanCache, StampedPlan
from api.ingest.write import (
    API_CALL,
    Dater,
    Item,
    Priced,
    Status,
    crossed,
    limits,
    price,
    unrecorded,
    usage_write,
)
from billing.catalog import DEFAULT_CATALOG, PriceCatalog
from billing.errors import (
    BillingError,
    DependencyUnavailable,
    InvalidInput,
    NotFound,
    Unauthenticated,
)
from billing.metering import TierChange, check_subscribed
from observability import metrics
from store import customers as customer_store
from store import usage as usage_store
from store.limiter import LiveBump, RateLimiter, Reservation

log = logging.getLogger("api.usage")

_ATTEMPTS = 3  # a plan that changes under every attempt is a 503, not a loop
Plans = dict[str, StampedPlan]


class _Stale(Exception):
    """Plans that are no longer current; everything reserved was given back."""

    def __init__(self, customers: list[str]) -> None:
        super().__init__(customers)
        self.customers = customers


@dataclass(slots=True)
class Recording:
    """What one request recorded: counts, per-event decisions, each customer's reservation."""

    items: list[Item]
    plans: Plans
    inserted: int = 0
    duplicates: int = 0  # includes the in-batch repeats the caller adds
    refused: list[tuple[EventIn, BillingError]] = field(default_factory=list)
    reservations: dict[str, Reservation] = field(default_factory=dict)

    def status_of(self, item: Item) -> Status:
        """For a request of one event."""
        if item.status is not None:
            return item.status
        return "inserted" if self.inserted else "duplicate"


def check_started(item: Item) -> None:
    """InvalidInput for client-dated usage before the customer's started_at."""
    if item.client_dated:
        check_subscribed(item.occurred_at, item.stamped.plan.started_at)


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

    async def record_one(self, caller: Caller, event: EventIn) -> tuple[Item, Recording]:
        """201/200/409/429 material for one event; NotFound, InvalidInput raised."""
        caller.authorize(event.customer_id)
        for _ in range(_ATTEMPTS):
            plans = await self.plans.plans([event.customer_id])
            stamped = plans.get(event.customer_id)
            if stamped is None:
                raise NotFound(f"no customer {event.customer_id!r}")
            item = Dater(self.limiter.clock()).date(stamped, event)
            check_started(item)
            try:
                return item, await self._record(caller, Recording([item], plans))
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
        """Dated items; in-batch repeats counted, unknown and unstarted ones refused."""
        dater = Dater(self.limiter.clock())
        out = Recording([], plans)
        seen: set[tuple[str, str]] = set()
        for index, event in enumerate(events):
            key = (event.customer_id, event.event_id)
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
                item = dater.date(stamped, event)
            except InvalidInput as exc:
                raise InvalidInput(f"events.{index}: {exc.message}") from None
            try:
                check_started(item)
            except InvalidInput as exc:  # this event's fault, not the batch's
                out.refused.append((event, exc))
                continue
            out.items.append(item)
        metrics.usage_events(["duplicate"], count=out.duplicates)
        return out

    async def _record(self, caller: Caller, out: Recording) -> Recording:
        """Steps 1-3; raises _Stale (everything given back) when a plan is not current."""
        items, plans = out.items, out.plans
        if not items:
            return out
        priced = price(self.catalog, items, await self._histories(items))
        limited, deps = limits(priced, plans)
        out.reservations, admitted = await self._admit(limited, deps, priced, plans)
        # What the admission bumped: every group but a refused customer's api_calls.
        allowed = [True, *(r.allowed for r in out.reservations.values())]
        bumped = [g for g, w in enumerate(deps) if admitted and allowed[w]]
        if any(not r.allowed for r in out.reservations.values()):
            try:
                await self._refusals(out)
            except _Stale:
                await self._give_back(out, priced, bumped, {})
                raise
        call, sent = usage_write(caller.key_hash, priced, items)
        inserted: dict[int, tuple[int, int]] = {}
        billed = 0
        if sent:
            try:
                written = await usage_store.record(self.state.pool, call)
            except BaseException:
                await self._give_back(out, priced, bumped, {})
                raise
            if written.unauthorized or written.stale:
                await self._give_back(out, priced, bumped, {})
                if written.unauthorized:
                    self.plans.forget_key(caller.key_hash or "")
                    raise Unauthenticated("the API key is not valid")
                raise _Stale([call.customers[i] for i in written.stale])
            inserted, billed = written.inserted, len(written.billed)
            for n in written.known:
                sent[n].status = "duplicate"
            for n in written.billed:
                sent[n].status = "billed"
        out.inserted = sum(n for n, _ in inserted.values())
        out.duplicates += len(sent) - out.inserted - billed
        await self._give_back(out, priced, bumped, inserted)
        await self._conversions(out, priced, inserted)
        metrics.usage_events(["inserted"], count=out.inserted)
        metrics.usage_events(["duplicate"], count=len(sent) - out.inserted - billed)
        metrics.usage_events(["billed"], count=billed)
        return out

    async def _admit(
        self, limited: list[tuple[str, int, int]], deps: list[int], priced: Priced, plans: Plans
    ) -> tuple[dict[str, Reservation], bool]:
        """Reservations by customer, and whether Redis took them (and the live bumps)."""
        live = usage_store.live_bumps(
            (w, g, sent[1]) for w, g, sent in zip(deps, priced.groups, priced.sent, strict=True)
        )
        try:
            answers = await self.limiter.admit(limited, live, usage_store.live_ttl_s())
        except DependencyUnavailable:
            if not limited:
                log.warning("live counters skipped: Redis unreachable (rebuildable from Postgres)")
                return {}, False
            policy = self.state.settings.rate_limit_redis_down
            for cid, _, _ in limited:
                metrics.limiter_decision(f"redis_down_{policy}", plans[cid].plan.tier.value)
            if policy == "deny":
                raise
            ids = ", ".join(cid for cid, _, _ in limited)
            log.warning("rate limiter unreachable: recording %s's usage unchecked", ids)
            return {}, False
        reservations = {}
        for (cid, _, _), reservation in zip(limited, answers, strict=True):
            decision = "allowed" if reservation.allowed else "limited"
            metrics.limiter_decision(decision, plans[cid].plan.tier.value)
            reservations[cid] = reservation
        return reservations, True

    async def _refusals(self, out: Recording) -> None:
        """A refused customer's api_calls: duplicates if recorded before, else rate_limited."""
        stale: list[str] = []
        refused = {cid for cid, r in out.reservations.items() if not r.allowed}
        for cid in refused:
            calls = [
                i for i in out.items if i.event.customer_id == cid and i.event.kind is API_CALL
            ]
            ids = [i.event.event_id for i in calls]
            stamp, known = await usage_store.refusal_facts(self.state.pool, cid, ids)
            if stamp != out.plans[cid].stamp:
                stale.append(cid)
                continue
            for i in calls:
                i.status = "duplicate" if i.event.event_id in known else "rate_limited"
            out.duplicates += len(known)
            metrics.usage_events(["duplicate"], count=len(known))
            metrics.usage_events(["rate_limited"], count=len(calls) - len(known))
        if stale:
            raise _Stale(stale)

    async def _give_back(
        self,
        out: Recording,
        priced: Priced,
        bumped: list[int],
        inserted: dict[int, tuple[int, int]],
    ) -> None:
        """What Postgres did not record, back to the hour counters and the live counters."""
        unused, settled, back = unrecorded(priced, out.reservations, bumped, inserted)
        out.reservations.update(settled)
        live: list[LiveBump] = usage_store.live_bumps(back)
        try:
            await self.limiter.give_back(unused, live)
        except DependencyUnavailable:
            log.warning("could not give back unrecorded usage to Redis: %s", unused)

    async def _conversions(
        self, out: Recording, priced: Priced, inserted: dict[int, tuple[int, int]]
    ) -> None:
        """Start the upgrade of each convertible free customer whose calls crossed the line."""
        crossing = crossed(priced, inserted, out.plans, out.reservations)
        for cid in crossing:
            await convert(self.state, self.limiter, cid)

    async def _histories(self, items: Sequence[Item]) -> dict[str, list[TierChange]]:
        """One read of the tier history, only for customers with events before their tier."""
        since: dict[str, datetime] = {}
        for item in items:
            if item.client_dated and item.predates_tier:
                cid = item.event.customer_id
                since[cid] = min(since.get(cid, item.occurred_at), item.occurred_at)
        if not since:
            return {}
        return await customer_store.tier_histories(self.state.pool, since)
