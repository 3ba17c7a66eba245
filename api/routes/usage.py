"""Usage events in, one or a batch: rate-limited, priced when they occurred, recorded once.

Per customer: price each event at the tier in force when it occurred (`api.ingest`; usage
before the customer's started_at is refused), reserve its api_call quantity
in the hourly limiter (one Lua round trip), insert every event of the request in one Postgres
statement, give back what was not inserted, bump the live counters, and start the
free-to-starter conversion when a convertible free customer has crossed the free limit.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request, Response

from api.auth import CallerDep, StateDep, authorize_customer
from api.deps import AppState
from api.errors import rate_limit_headers
from api.ingest import CustomerPlan, Dated, check_started, date, plan_for, price_all
from api.schemas import (
    ERRORS,
    ErrorBody,
    RejectedEvent,
    UsageBatch,
    UsageBatchResult,
    UsageEventBody,
    UsageRecorded,
)
from api.starters import start_auto_conversion
from billing.catalog import Tier, UsageKind
from billing.errors import (
    BillingError,
    DependencyUnavailable,
    InvalidInput,
    NotFound,
    PeriodAlreadyBilled,
    RateLimited,
)
from observability import metrics
from store import customers as customer_store
from store import usage as usage_store
from store.limiter import RateLimiter, Reservation
from store.usage import PricedEvent

log = logging.getLogger("api.usage")
router = APIRouter(tags=["usage"], responses=ERRORS)

_CONVERSION_START_TIMEOUT_S = 5.0

Status = Literal["inserted", "duplicate", "billed", "rate_limited"]
Group = tuple["CustomerPlan", list[PricedEvent]]


async def get_limiter(request: Request) -> RateLimiter:
    limiter: RateLimiter = request.app.state.limiter
    return limiter


LimiterDep = Annotated[RateLimiter, Depends(get_limiter)]


def limited_message(plan: CustomerPlan, reservation: Reservation) -> str:
    upgrade = f"POST /v1/customers/{plan.customer.id}/upgrade"
    if plan.tier == Tier.FREE:
        lift = (
            "upgrading to starter lifts the limit to 10,000 per hour (add a payment method and "
            f"keep auto_upgrade on, or {upgrade})"
        )
    else:
        lift = f"upgrading to a higher tier lifts the limit ({upgrade})"
    return (
        f"rate limited: the {plan.tier.value} tier allows {reservation.limit} API calls per "
        f"hour; {reservation.count} are counted this hour and these {reservation.quantity} "
        f"do not fit; {lift}, or retry after the reset"
    )


@dataclass
class Recording:
    """What happened to each (customer_id, event_id), and each customer's final count."""

    status: dict[tuple[str, str], Status] = field(default_factory=dict)
    reservations: dict[str, Reservation] = field(default_factory=dict)


def _api_calls(events: list[PricedEvent]) -> int:
    return sum(e.quantity for e in events if e.kind == UsageKind.API_CALL)


async def _reserve(
    state: AppState, limiter: RateLimiter, plan: CustomerPlan, quantity: int
) -> Reservation | None:
    """None when there is nothing to check, or Redis is down and the policy is `allow`."""
    if plan.limit is None or quantity <= 0:
        return None
    try:
        reservation = await limiter.reserve(plan.customer.id, quantity, plan.limit)
    except DependencyUnavailable:
        policy = state.settings.rate_limit_redis_down
        metrics.limiter_decision(f"redis_down_{policy}", plan.tier.value)
        if policy == "deny":
            raise
        log.warning("rate limiter unreachable: recording %s's usage unchecked", plan.customer.id)
        return None
    metrics.limiter_decision("allowed" if reservation.allowed else "limited", plan.tier.value)
    return reservation


async def _give_back(limiter: RateLimiter, reservation: Reservation, quantity: int) -> None:
    try:
        await limiter.release(reservation, quantity)
    except DependencyUnavailable:
        log.warning("could not give back %d to %s", quantity, reservation.key)


async def _convert(state: AppState, limiter: RateLimiter, customer_id: str) -> None:
    """Start the upgrade saga once; a failed start clears the flag for the next request."""
    try:
        if not await limiter.claim_conversion(customer_id):
            return
    except DependencyUnavailable:
        return
    try:
        async with asyncio.timeout(_CONVERSION_START_TIMEOUT_S):
            await start_auto_conversion(state.temporal, state.settings, customer_id)
    except Exception:
        # The usage is recorded either way; the next request over the line retries the start.
        log.exception("could not start the auto conversion of %s", customer_id)
        try:
            await limiter.forget_conversion(customer_id)
        except DependencyUnavailable:
            log.warning("could not clear the conversion flag of %s", customer_id)


async def _admit(
    state: AppState, limiter: RateLimiter, groups: list[Group], out: Recording
) -> list[PricedEvent]:
    """Reserve each customer's api_call quantity; a refused customer's calls are dropped."""
    admitted: list[PricedEvent] = []
    for plan, events in groups:
        calls = [e for e in events if e.kind == UsageKind.API_CALL]
        reservation = await _reserve(state, limiter, plan, _api_calls(calls))
        if reservation is not None:
            out.reservations[plan.customer.id] = reservation
        if reservation is None or reservation.allowed:
            admitted.extend(events)
            continue
        # A retry of an event that is already recorded is a duplicate, not a refusal.
        ids = [e.event_id for e in calls]
        known = await usage_store.existing_event_ids(state.pool, plan.customer.id, ids)
        for e in calls:
            out.status[e.customer_id, e.event_id] = (
                "duplicate" if e.event_id in known else "rate_limited"
            )
        admitted.extend(e for e in events if e.kind != UsageKind.API_CALL)
    return admitted


async def _settle(
    state: AppState, limiter: RateLimiter, plan: CustomerPlan, held: Reservation, recorded: int
) -> Reservation:
    """Give back what was not recorded; convert if a convertible free customer crossed."""
    unused = held.quantity - recorded
    if unused:
        await _give_back(limiter, held, unused)
    settled = dataclasses.replace(held, count=held.count - unused)
    crossed = plan.free_limit is not None and settled.count > plan.free_limit
    if plan.converts and recorded and crossed:
        await _convert(state, limiter, plan.customer.id)
    return settled


async def record_groups(state: AppState, limiter: RateLimiter, groups: list[Group]) -> Recording:
    """Limit, insert in one statement, then make the hourly counts match what was inserted."""
    out = Recording()
    try:
        admitted = await _admit(state, limiter, groups, out)
        result = await usage_store.record_events(state.pool, admitted)
    except BaseException:
        # Nothing was recorded (one transaction): no hourly count may keep these reservations.
        for reserved in out.reservations.values():
            await _give_back(limiter, reserved, reserved.quantity)
        raise
    outcomes: list[tuple[Status, list[PricedEvent]]] = [
        ("inserted", result.inserted),
        ("duplicate", result.duplicates),
        ("billed", result.billed),
    ]
    for status, events in outcomes:
        for e in events:
            out.status[e.customer_id, e.event_id] = status
    recorded_calls: dict[str, int] = defaultdict(int)
    for e in result.inserted:
        if e.kind == UsageKind.API_CALL:
            recorded_calls[e.customer_id] += e.quantity
    for plan, _ in groups:
        cid = plan.customer.id
        held = out.reservations.get(cid)
        if held is not None and held.allowed:
            settled = await _settle(state, limiter, plan, held, recorded_calls[cid])
            out.reservations[cid] = settled
    metrics.usage_events(out.status.values())
    try:
        await usage_store.bump_live_counters(state.redis, result.inserted)
    except DependencyUnavailable:
        log.warning("live counters skipped: Redis unreachable (rebuildable from Postgres)")
    return out


def _set_limit_headers(response: Response, reservation: Reservation | None) -> None:
    if reservation is not None:
        headers = rate_limit_headers(reservation.limit, reservation.remaining, reservation.reset_at)
        response.headers.update(headers)


@router.post(
    "/v1/usage",
    status_code=201,
    response_model=UsageRecorded,
    responses={
        200: {"description": "A duplicate event_id: recorded before, not again"},
        409: {"model": ErrorBody, "description": "A new event in an already billed period"},
        422: {"model": ErrorBody, "description": "Malformed, or before the customer's started_at"},
        429: {"model": ErrorBody, "description": "Over the hourly API-call limit"},
        503: {"model": ErrorBody, "description": "Redis down and RATE_LIMIT_REDIS_DOWN=deny"},
    },
)
async def record_usage(
    event: UsageEventBody,
    response: Response,
    principal: CallerDep,
    state: StateDep,
    limiter: LimiterDep,
) -> UsageRecorded:
    """201 recorded, 200 duplicate, 409 new usage in a billed period, 429 over the hourly limit."""
    authorize_customer(principal, event.customer_id)
    client_dated = event.occurred_at is not None
    rows = await customer_store.get_customers(
        state.pool, [event.customer_id], tier_since=client_dated
    )
    if event.customer_id not in rows:
        raise NotFound(f"no customer {event.customer_id!r}")
    plan = plan_for(rows[event.customer_id])
    dated = date(plan, event, limiter.clock())
    check_started(dated)
    [priced] = await price_all(state.pool, [dated])
    recording = await record_groups(state, limiter, [(plan, [priced])])
    reservation = recording.reservations.get(plan.customer.id)
    status = recording.status[priced.customer_id, priced.event_id]
    if status == "rate_limited":
        assert reservation is not None
        raise RateLimited(
            limited_message(plan, reservation),
            limit=reservation.limit,
            remaining=reservation.remaining,
            reset_at=reservation.reset_at,
        )
    if status == "billed":
        raise PeriodAlreadyBilled(
            f"period {priced.period} is already billed for {priced.customer_id}; "
            "usage that occurred in it can no longer be recorded"
        )
    _set_limit_headers(response, reservation)
    if status == "duplicate":
        response.status_code = 200
    return UsageRecorded(recorded=status == "inserted", duplicate=status == "duplicate")


@router.post("/v1/usage/batch", response_model=UsageBatchResult)
async def record_usage_batch(
    body: UsageBatch,
    response: Response,
    principal: CallerDep,
    state: StateDep,
    limiter: LimiterDep,
) -> UsageBatchResult:
    """Malformed events refuse the whole batch (422); per-event refusals land in `rejected`."""
    customer_ids = sorted({e.customer_id for e in body.events})
    for customer_id in customer_ids:
        authorize_customer(principal, customer_id)
    client_dated = any(e.occurred_at is not None for e in body.events)
    rows = await customer_store.get_customers(state.pool, customer_ids, tier_since=client_dated)
    plans = {cid: plan_for(row) for cid, row in rows.items()}
    now = limiter.clock()
    seen: set[tuple[str, str]] = set()
    in_batch_duplicates = 0
    rejected: list[RejectedEvent] = []
    pending: list[Dated] = []
    for index, event in enumerate(body.events):
        key = (event.customer_id, event.event_id)
        if key in seen:
            in_batch_duplicates += 1
            continue
        seen.add(key)
        plan = plans.get(event.customer_id)
        if plan is None:
            metrics.usage_events(["unknown_customer"])
            missing = NotFound(f"no customer {event.customer_id!r}")
            rejected.append(_refused(event.event_id, event.customer_id, missing))
            continue
        try:
            dated = date(plan, event, now)
        except InvalidInput as exc:
            raise InvalidInput(f"events.{index}: {exc.message}") from None
        try:
            check_started(dated)
        except InvalidInput as exc:  # this event's fault, not the batch's
            rejected.append(_refused(event.event_id, event.customer_id, exc))
            continue
        pending.append(dated)
    groups: dict[str, list[PricedEvent]] = defaultdict(list)
    for priced in await price_all(state.pool, pending):
        groups[priced.customer_id].append(priced)
    recording = await record_groups(state, limiter, [(plans[c], evs) for c, evs in groups.items()])
    counts = {"inserted": 0, "duplicate": 0}
    for events in groups.values():
        for e in events:
            status = recording.status[e.customer_id, e.event_id]
            if status in counts:
                counts[status] += 1
            else:
                rejected.append(_rejection(e, status, plans[e.customer_id], recording))
    metrics.usage_events(["duplicate"], count=in_batch_duplicates)
    if len(customer_ids) == 1:
        _set_limit_headers(response, recording.reservations.get(customer_ids[0]))
    return UsageBatchResult(
        accepted=counts["inserted"],
        duplicates=counts["duplicate"] + in_batch_duplicates,
        rejected=rejected,
    )


def _rejection(e: PricedEvent, status: Status, plan: CustomerPlan, rec: Recording) -> RejectedEvent:
    if status == "billed":
        code, message = PeriodAlreadyBilled.code, f"period {e.period} is already billed"
    else:
        code, message = RateLimited.code, limited_message(plan, rec.reservations[e.customer_id])
    return RejectedEvent(
        event_id=e.event_id, customer_id=e.customer_id, error=code, message=message
    )


def _refused(event_id: str, customer_id: str, exc: BillingError) -> RejectedEvent:
    return RejectedEvent(
        event_id=event_id, customer_id=customer_id, error=exc.code, message=exc.message
    )
