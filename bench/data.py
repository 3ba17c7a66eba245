"""Customers and usage for the benchmarks, written with the store's own statements in bulk.

Setting up is not what is measured, so rows go in pipelined (`executemany`) or copied,
in one transaction per call, not through the API.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import asyncpg

from api.auth import hash_customer_key, new_customer_key
from billing.catalog import DEFAULT_CATALOG, Tier, UsageKind
from billing.metering import event_cost
from billing.periods import period_bounds
from store import customers as sql

USAGE_COLUMNS = (
    "customer_id", "event_id", "kind", "quantity", "occurred_at", "period", "tier",
    "unit_price", "cost",
)  # fmt: skip
UsageRow = tuple[str, str, str, int, datetime, str, str, Decimal, Decimal]

# One event of each kind; quantities as a metered SaaS customer might send them.
KINDS: tuple[tuple[UsageKind, int], ...] = (
    (UsageKind.API_CALL, 1),
    (UsageKind.LLM_TOKENS, 1_500),
    (UsageKind.AGENT_EXECUTION, 1),
)


async def create_customers(
    pool: asyncpg.Pool,
    prefix: str,
    count: int,
    *,
    tier: Tier,
    started_at: datetime,
    token: str | None = "tok_success",
) -> list[str]:
    """`count` customers `cus_{prefix}{n}` with a card on file; returns their ids in order."""
    keyed = await create_keyed_customers(
        pool, prefix, count, tier=tier, started_at=started_at, token=token
    )
    return list(keyed)


async def create_keyed_customers(
    pool: asyncpg.Pool,
    prefix: str,
    count: int,
    *,
    tier: Tier,
    started_at: datetime,
    token: str | None = "tok_success",
) -> dict[str, str]:
    """As `create_customers`, with each customer's own API key (made and stored hashed as
    POST /v1/customers makes it): customer id -> key, in order."""
    keys = {f"cus_{prefix}{n:06d}": new_customer_key() for n in range(count)}
    ids = list(keys)
    customers = [
        (cid, "Bench Customer", f"{cid}@example.com", tier.value, False, Decimal("0.08"), "USD",
         hash_customer_key(key), started_at)
        for cid, key in keys.items()
    ]  # fmt: skip
    async with pool.acquire() as conn, conn.transaction():
        await conn.executemany(sql.INSERT_CUSTOMER, customers)
        await conn.executemany(sql.INSERT_INITIAL_TIER, [(c, tier.value, started_at) for c in ids])
        if token is not None:
            methods = [(f"pm_{cid}", cid, "credit_card", token) for cid in ids]
            await conn.executemany(sql.INSERT_PAYMENT_METHOD, methods)
    return keys


def priced_row(
    customer_id: str, event_id: str, kind: UsageKind, quantity: int, at: datetime, tier: Tier
) -> UsageRow:
    """A usage_events row exactly as the API would store it."""
    unit_price, cost = event_cost(DEFAULT_CATALOG, tier, kind, quantity)
    period = f"{at.astimezone(UTC):%Y-%m}"
    return (customer_id, event_id, kind.value, quantity, at, period, tier.value, unit_price, cost)


async def add_period_usage(
    pool: asyncpg.Pool, customer_ids: list[str], period: str, tier: Tier
) -> int:
    """One event of each kind per customer in `period`, so every bill has usage lines."""
    at = period_bounds(period)[0].replace(day=10)
    rows = [
        priced_row(cid, f"{period}-{kind.value}", kind, quantity, at, tier)
        for cid in customer_ids
        for kind, quantity in KINDS
    ]
    async with pool.acquire() as conn:
        await conn.copy_records_to_table("usage_events", records=rows, columns=USAGE_COLUMNS)
    return len(rows)
