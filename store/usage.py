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

The function `record_usage` (migrations 0006 to 0008) does all of it in one call, one
round trip and its own transaction; `record` below is its only caller.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

import asyncpg
from redis.asyncio import Redis

from billing.catalog import UsageKind
from store.limiter import LiveBump

RECORD_USAGE = """
SELECT outcome, idx, events, quantity FROM record_usage(
    $1::text, $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
    $8::text[], $9::text[], $10::numeric[], $11::text, $12::text, $13::text, $14::float8[])"""

# A refused request still answers "duplicate" for an event already recorded; the stamp says
# whether the plan it was refused under is still the customer's.
REFUSAL_FACTS = """
SELECT usage_plan_stamp($1::text) AS stamp,
       ARRAY(SELECT event_id FROM usage_events
             WHERE customer_id = $1::text AND event_id = ANY($2::text[])) AS known"""

# Per kind and recorded unit price: what a bill's usage lines are built from.
USAGE_GROUPS = """
SELECT kind, unit_price, sum(quantity)::bigint AS quantity
FROM usage_events WHERE customer_id = $1::text AND period = $2::text
GROUP BY kind, unit_price ORDER BY kind, unit_price"""

# Costs are kept in Redis as integers of 1e-10 (the column's scale): HINCRBY stays exact,
# where HINCRBYFLOAT would turn money into a float.
COST_SCALE = 10
_LIVE_TTL_S = 100 * 86_400


@dataclass(frozen=True, slots=True)
class Group:
    """Events of one customer, kind, period and tier: one unit price, priced once."""

    customer_id: str
    kind: str
    period: str
    tier: str
    unit_price: Decimal


@dataclass(slots=True)
class UsageWrite:
    """One `record_usage` call, as column arrays; `e_group` holds 1-based group indexes,
    `e_at` each occurred_at as float seconds since the epoch."""

    key_hash: str | None
    customers: list[str]
    stamps: list[str]
    groups: list[Group]
    e_group: list[int] = field(default_factory=list)
    e_event_id: list[str] = field(default_factory=list)
    e_quantity: list[int] = field(default_factory=list)
    e_at: list[float] = field(default_factory=list)


@dataclass(slots=True)
class Written:
    """What the call did; indexes are 0-based into the call's customers, groups, events."""

    unauthorized: bool = False
    stale: list[int] = field(default_factory=list)
    every: bool = False  # every event of the call inserted (then `inserted` is not filled)
    inserted: dict[int, tuple[int, int]] = field(default_factory=dict)  # group: (n, quantity)
    known: set[int] = field(default_factory=set)
    billed: set[int] = field(default_factory=set)


async def record(pool: asyncpg.Pool, call: UsageWrite) -> Written:
    """Insert new events, skip known ids (billed period or not), refuse new late ones."""
    pairs = sorted({(g.customer_id, g.period) for g in call.groups})  # one lock order
    groups = call.groups
    rows = await pool.fetch(
        RECORD_USAGE,
        call.key_hash,
        call.customers,
        call.stamps,
        [c for c, _ in pairs],
        [p for _, p in pairs],
        [g.customer_id for g in groups],
        [g.kind for g in groups],
        [g.period for g in groups],
        [g.tier for g in groups],
        [g.unit_price for g in groups],
        # Comma-separated, not arrays: asyncpg checks every array element against an ABC in
        # Python (migration 0008). An event_id never holds a comma (the API refuses it).
        ",".join(map(str, call.e_group)),
        ",".join(call.e_event_id),
        ",".join(map(str, call.e_quantity)),
        call.e_at,
    )
    out = Written()
    for outcome, idx, events, quantity in rows:
        if outcome == "all":
            out.every = True
        elif outcome == "inserted":
            out.inserted[idx - 1] = (events, quantity)
        elif outcome == "known":
            out.known.add(idx - 1)
        elif outcome == "billed":
            out.billed.add(idx - 1)
        elif outcome == "stale":
            out.stale.append(idx - 1)
        else:
            out.unauthorized = True
    return out


async def refusal_facts(
    pool: asyncpg.Pool, customer_id: str, event_ids: list[str]
) -> tuple[str | None, set[str]]:
    """(the customer's plan stamp now, which of `event_ids` are already recorded)."""
    row = await pool.fetchrow(REFUSAL_FACTS, customer_id, event_ids)
    assert row is not None
    return row["stamp"], set(row["known"])


async def usage_groups(
    pool: asyncpg.Pool, customer_id: str, period: str
) -> list[tuple[UsageKind, Decimal, int]]:
    """(kind, unit price, quantity) for one customer and period, from the record."""
    rows = await pool.fetch(USAGE_GROUPS, customer_id, period)
    return [(UsageKind(r["kind"]), r["unit_price"], int(r["quantity"])) for r in rows]


def live_key(customer_id: str, period: str) -> str:
    return f"usage:{customer_id}:{period}"


def scaled_cost(quantity: int, unit_price: Decimal) -> int:
    """quantity x unit price in integers of 1e-10, as the live counters keep costs."""
    return int((unit_price * quantity).scaleb(COST_SCALE).to_integral_value(ROUND_HALF_UP))


def live_bumps(amounts: Iterable[tuple[int, Group, int]]) -> list[LiveBump]:
    """HINCRBY amounts per (customer, period) hash from (who, group, quantity) entries."""
    fields: dict[str, list[tuple[int, str, int]]] = {}
    for who, g, quantity in amounts:
        entries = fields.setdefault(live_key(g.customer_id, g.period), [])
        entries.append((who, f"{g.kind}:quantity", quantity))
        entries.append((who, f"{g.kind}:cost", scaled_cost(quantity, g.unit_price)))
    return [LiveBump(key, entries) for key, entries in fields.items()]


def live_ttl_s() -> int:
    return _LIVE_TTL_S


async def read_live_counters(redis: Redis, customer_id: str, period: str) -> dict[str, Decimal]:
    """field -> value, with costs scaled back to currency units."""
    raw = await redis.hgetall(live_key(customer_id, period))
    out: dict[str, Decimal] = {}
    for name_raw, value in raw.items():
        name = name_raw.decode() if isinstance(name_raw, bytes) else str(name_raw)
        amount = Decimal(int(value))
        out[name] = amount.scaleb(-COST_SCALE) if name.endswith(":cost") else amount
    return out
