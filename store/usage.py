"""Usage events in Postgres (the record) and live per-period counters in Redis (a cache).

Contract with the bill builder, so late usage never slips into an already-built bill:
inserting usage for (customer, period) first takes, in its own statement inside the insert
transaction,

    pg_advisory_xact_lock_shared(hashtext(customer_id || ':' || period))

then checks that no `bills` row with kind = 'cycle' exists for that customer and period, then
inserts. The bill builder takes the exclusive twin

    pg_advisory_xact_lock(hashtext(customer_id || ':' || period))

before aggregating usage, in the transaction that inserts the cycle bill. Either the usage
commits first and the builder (waiting on the lock) sees it, or the bill commits first and
the usage check (a later statement, so a fresh snapshot) sees the bill and refuses.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

import asyncpg
from redis.asyncio import Redis

from billing.errors import DependencyUnavailable
from store.limiter import UNREACHABLE

LOCK_PERIODS = """
SELECT count(pg_advisory_xact_lock_shared(hashtext(t.customer_id || ':' || t.period)))
FROM unnest($1::text[], $2::text[]) AS t(customer_id, period)"""

BILLED_PERIODS = """
SELECT b.customer_id, b.period::text AS period
FROM bills b
JOIN unnest($1::text[], $2::text[]) AS t(customer_id, period)
  ON b.customer_id = t.customer_id AND b.period = t.period
WHERE b.kind = 'cycle'"""

# Ids already recorded among events aimed at billed periods: a retry, not late usage.
KNOWN_EVENTS = """
SELECT e.customer_id, e.event_id
FROM usage_events e
JOIN unnest($1::text[], $2::text[]) AS t(customer_id, event_id)
  ON e.customer_id = t.customer_id AND e.event_id = t.event_id"""

# One round trip for the whole batch; the primary key (customer_id, event_id) dedupes.
INSERT_EVENTS = """
INSERT INTO usage_events
    (customer_id, event_id, kind, quantity, occurred_at, period, tier, unit_price, cost)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::timestamptz[],
                     $6::text[], $7::text[], $8::numeric[], $9::numeric[])
ON CONFLICT (customer_id, event_id) DO NOTHING
RETURNING customer_id, event_id"""

EXISTING_EVENTS = """
SELECT event_id FROM usage_events WHERE customer_id = $1::text AND event_id = ANY($2::text[])"""

USAGE_TOTALS = """
SELECT kind, sum(quantity) AS quantity, sum(cost) AS cost
FROM usage_events WHERE customer_id = $1::text AND period = $2::text
GROUP BY kind ORDER BY kind"""

# Costs are kept in Redis as integers of 1e-10 (the column's scale): HINCRBY stays exact,
# where HINCRBYFLOAT would turn money into a float.
COST_SCALE = 10
_LIVE_TTL_S = 100 * 86_400


@dataclass(frozen=True)
class PricedEvent:
    """An event ready to store: priced at the tier in force when it occurred."""

    customer_id: str
    event_id: str
    kind: str
    quantity: int
    occurred_at: datetime
    period: str
    tier: str
    unit_price: Decimal
    cost: Decimal


@dataclass(frozen=True)
class Recorded:
    """What one insert did: each event is exactly one of inserted, duplicate, billed.

    A known event_id is a duplicate even when its period is billed; only new ones are billed.
    """

    inserted: list[PricedEvent]
    duplicates: list[PricedEvent]
    billed: list[PricedEvent]


async def record_events(pool: asyncpg.Pool, events: list[PricedEvent]) -> Recorded:
    """Insert new events, skip known ids (billed period or not), refuse new late ones; one txn."""
    if not events:
        return Recorded([], [], [])
    pairs = sorted({(e.customer_id, e.period) for e in events})  # one lock order everywhere
    customers, periods = [c for c, _ in pairs], [p for _, p in pairs]
    async with pool.acquire() as conn, conn.transaction():
        await conn.fetchval(LOCK_PERIODS, customers, periods)
        billed_rows = await conn.fetch(BILLED_PERIODS, customers, periods)
        billed_pairs = {(r["customer_id"], r["period"]) for r in billed_rows}
        late = [e for e in events if (e.customer_id, e.period) in billed_pairs]
        todo = [e for e in events if (e.customer_id, e.period) not in billed_pairs]
        known: set[tuple[str, str]] = set()
        if late:  # only then: the common case keeps its three statements
            known_rows = await conn.fetch(
                KNOWN_EVENTS, [e.customer_id for e in late], [e.event_id for e in late]
            )
            known = {(r["customer_id"], r["event_id"]) for r in known_rows}
        rows = await conn.fetch(
            INSERT_EVENTS,
            [e.customer_id for e in todo],
            [e.event_id for e in todo],
            [e.kind for e in todo],
            [e.quantity for e in todo],
            [e.occurred_at for e in todo],
            [e.period for e in todo],
            [e.tier for e in todo],
            [e.unit_price for e in todo],
            [e.cost for e in todo],
        )
    new = {(r["customer_id"], r["event_id"]) for r in rows}
    inserted = [e for e in todo if (e.customer_id, e.event_id) in new]
    duplicates = [e for e in todo if (e.customer_id, e.event_id) not in new]
    duplicates += [e for e in late if (e.customer_id, e.event_id) in known]
    billed = [e for e in late if (e.customer_id, e.event_id) not in known]
    return Recorded(inserted, duplicates, billed)


async def existing_event_ids(
    pool: asyncpg.Pool, customer_id: str, event_ids: list[str]
) -> set[str]:
    rows = await pool.fetch(EXISTING_EVENTS, customer_id, event_ids)
    return {r["event_id"] for r in rows}


async def usage_totals(
    pool: asyncpg.Pool, customer_id: str, period: str
) -> dict[str, tuple[int, Decimal]]:
    """kind -> (quantity, unrounded cost) for one customer and period, from the record."""
    rows = await pool.fetch(USAGE_TOTALS, customer_id, period)
    return {r["kind"]: (int(r["quantity"]), r["cost"]) for r in rows}


def live_key(customer_id: str, period: str) -> str:
    return f"usage:{customer_id}:{period}"


async def bump_live_counters(redis: Redis, events: Iterable[PricedEvent]) -> None:
    """HINCRBY quantity and cost per kind, pipelined; call only after the Postgres commit."""
    # Summed here first: one HINCRBY per (customer, period, kind) and figure, not per event.
    # Each cost is scaled and rounded alone, as before, so the counters end up the same.
    totals: dict[tuple[str, str], int] = defaultdict(int)
    for e in events:
        key = live_key(e.customer_id, e.period)
        totals[key, f"{e.kind}:quantity"] += e.quantity
        totals[key, f"{e.kind}:cost"] += int(
            e.cost.scaleb(COST_SCALE).to_integral_value(ROUND_HALF_UP)
        )
    if not totals:
        return
    pipe = redis.pipeline(transaction=False)
    for (key, field), amount in totals.items():
        pipe.hincrby(key, field, amount)
    for key in {key for key, _ in totals}:
        pipe.expire(key, _LIVE_TTL_S)
    try:
        await pipe.execute()
    except UNREACHABLE as exc:
        raise DependencyUnavailable("live usage counters (Redis) are unreachable") from exc


async def read_live_counters(redis: Redis, customer_id: str, period: str) -> dict[str, Decimal]:
    """field -> value, with costs scaled back to currency units."""
    raw = await redis.hgetall(live_key(customer_id, period))
    out: dict[str, Decimal] = {}
    for field, value in raw.items():
        name = field.decode() if isinstance(field, bytes) else str(field)
        amount = Decimal(int(value))
        out[name] = amount.scaleb(-COST_SCALE) if name.endswith(":cost") else amount
    return out
