"""Customers and their payment methods in Postgres; tokens are written, never read back out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import asyncpg

from billing.catalog import Tier
from billing.events import EventType
from billing.metering import TierChange
from store.db import Conn
from store.outbox import emit

_COLUMNS = """
    c.id, c.name, c.email, c.tier, c.status, c.auto_upgrade, c.tax_rate, c.currency,
    c.overrides, c.started_at, c.created_at,
    pm.id AS pm_id, pm.type AS pm_type, pm.created_at AS pm_created_at"""

# When the current tier took effect: read only for usage dated by the client, the one case
# that may predate it (server-dated usage happens now, under the current tier).
_TIER_SINCE = """,
    (SELECT max(tc.effective_at) FROM tier_changes tc WHERE tc.customer_id = c.id)
        AS tier_since"""

# The newest payment method is the default; its token is deliberately not selected.
_DEFAULT_METHOD = """
    LEFT JOIN LATERAL (
        SELECT id, type, created_at FROM payment_methods
        WHERE customer_id = c.id ORDER BY created_at DESC, id DESC LIMIT 1
    ) pm ON true"""

GET_CUSTOMER = f"SELECT {_COLUMNS} FROM customers c {_DEFAULT_METHOD} WHERE c.id = $1::text"

# Locks the customer's row only: its payment method is read, not changed.
GET_CUSTOMER_FOR_UPDATE = GET_CUSTOMER + " FOR UPDATE OF c"

CUSTOMER_EXISTS = "SELECT 1 FROM customers WHERE id = $1::text"

CUSTOMER_OF_KEY = "SELECT id FROM customers WHERE api_key_hash = $1::text"

GET_CUSTOMERS = f"SELECT {_COLUMNS} FROM customers c {_DEFAULT_METHOD} WHERE c.id = ANY($1::text[])"

GET_CUSTOMERS_WITH_TIER_SINCE = f"""
SELECT {_COLUMNS}{_TIER_SINCE} FROM customers c {_DEFAULT_METHOD} WHERE c.id = ANY($1::text[])"""

LIST_CUSTOMERS = f"""
SELECT {_COLUMNS} FROM customers c {_DEFAULT_METHOD}
WHERE $1::text IS NULL OR c.id > $1::text
ORDER BY c.id LIMIT $2::int"""

INSERT_CUSTOMER = """
INSERT INTO customers (id, name, email, tier, auto_upgrade, tax_rate, currency, api_key_hash,
                       started_at)
VALUES ($1::text, $2::text, $3::text, $4::text, $5::boolean, $6::numeric, $7::text, $8::text,
        $9::timestamptz)"""

# The tier a customer starts with is history too: bills explain prices from tier_changes.
INSERT_INITIAL_TIER = """
INSERT INTO tier_changes (customer_id, from_tier, to_tier, reason, effective_at, idempotency_key)
VALUES ($1::text, $2::text, $2::text, 'created', $3::timestamptz, 'created-' || $1::text)"""

# Per customer, every change from the one in force at `since` on: enough to price any moment
# at or after `since`. One round trip for a whole batch.
TIER_HISTORIES = """
SELECT tc.customer_id, tc.from_tier, tc.to_tier, tc.effective_at
FROM unnest($1::text[], $2::timestamptz[]) AS t(customer_id, since)
JOIN tier_changes tc ON tc.customer_id = t.customer_id
WHERE tc.effective_at >= coalesce(
    (SELECT max(p.effective_at) FROM tier_changes p
     WHERE p.customer_id = t.customer_id AND p.effective_at <= t.since),
    '-infinity'::timestamptz)
ORDER BY tc.customer_id, tc.effective_at, tc.id"""

INSERT_PAYMENT_METHOD = """
INSERT INTO payment_methods (id, customer_id, type, token)
VALUES ($1::text, $2::text, $3::text, $4::text)
RETURNING id, type, created_at"""


@dataclass(frozen=True)
class PaymentMethodRow:
    id: str
    type: str
    created_at: datetime


@dataclass(frozen=True)
class CustomerRow:
    """A customer as stored, with its default payment method (never its token)."""

    id: str
    name: str
    email: str
    tier: str
    status: str
    auto_upgrade: bool
    tax_rate: Decimal
    currency: str
    overrides: dict[str, Any]
    started_at: datetime
    created_at: datetime
    payment_method: PaymentMethodRow | None
    # When the current tier took effect (its tier_changes row): only from
    # get_customers(..., tier_since=True), and None for a customer without history.
    tier_since: datetime | None = None


@dataclass(frozen=True)
class NewCustomer:
    id: str
    name: str
    email: str
    tier: str
    auto_upgrade: bool
    tax_rate: Decimal
    currency: str
    api_key_hash: str
    started_at: datetime


def _customer(row: asyncpg.Record) -> CustomerRow:
    method = None
    if row["pm_id"] is not None:
        method = PaymentMethodRow(row["pm_id"], row["pm_type"], row["pm_created_at"])
    return CustomerRow(
        id=row["id"],
        name=row["name"],
        email=row["email"],
        tier=row["tier"],
        status=row["status"],
        auto_upgrade=row["auto_upgrade"],
        tax_rate=row["tax_rate"],
        currency=row["currency"].strip(),
        overrides=dict(row["overrides"] or {}),
        started_at=row["started_at"],
        created_at=row["created_at"],
        payment_method=method,
        tier_since=row.get("tier_since"),
    )


def customer_event_data(row: CustomerRow) -> dict[str, Any]:
    """The customer as `GET /v1/customers/{id}` shows it (never its key)."""
    method = row.payment_method
    return {
        "id": row.id,
        "name": row.name,
        "email": row.email,
        "tier": row.tier,
        "status": row.status,
        "auto_upgrade": row.auto_upgrade,
        "tax_rate": f"{row.tax_rate.normalize():f}" if row.tax_rate else "0",
        "currency": row.currency,
        "started_at": row.started_at,
        "created_at": row.created_at,
        "payment_method": None if method is None else vars(method),
    }


async def create_customer(pool: asyncpg.Pool, new: NewCustomer) -> CustomerRow:
    """The customer, its initial tier_changes row and its customer.created event, in one
    transaction."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            INSERT_CUSTOMER,
            new.id,
            new.name,
            new.email,
            new.tier,
            new.auto_upgrade,
            new.tax_rate,
            new.currency,
            new.api_key_hash,
            new.started_at,
        )
        await conn.execute(INSERT_INITIAL_TIER, new.id, new.tier, new.started_at)
        row = await conn.fetchrow(GET_CUSTOMER, new.id)
        assert row is not None
        customer = _customer(row)
        await emit(
            conn,
            type=EventType.CUSTOMER_CREATED,
            customer_id=new.id,
            data=customer_event_data(customer),
        )
    return customer


async def get_customer(pool: asyncpg.Pool | Conn, customer_id: str) -> CustomerRow | None:
    row = await pool.fetchrow(GET_CUSTOMER, customer_id)
    return None if row is None else _customer(row)


async def customer_exists(pool: asyncpg.Pool | Conn, customer_id: str) -> bool:
    return await pool.fetchval(CUSTOMER_EXISTS, customer_id) is not None


async def customer_of_key(pool: asyncpg.Pool, key_hash: str) -> str | None:
    """The customer a key's hash names; None: no customer holds that key."""
    found = await pool.fetchval(CUSTOMER_OF_KEY, key_hash)
    return None if found is None else str(found)


async def get_customers(
    pool: asyncpg.Pool, customer_ids: list[str], *, tier_since: bool = False
) -> dict[str, CustomerRow]:
    """Several customers in one round trip; unknown ids are simply absent."""
    query = GET_CUSTOMERS_WITH_TIER_SINCE if tier_since else GET_CUSTOMERS
    rows = await pool.fetch(query, customer_ids)
    return {row["id"]: _customer(row) for row in rows}


async def tier_histories(
    pool: asyncpg.Pool, since: dict[str, datetime]
) -> dict[str, list[TierChange]]:
    """customer -> its tier changes from the one in force at `since[customer]` on, in order."""
    ids = list(since)
    rows = await pool.fetch(TIER_HISTORIES, ids, [since[c] for c in ids])
    out: dict[str, list[TierChange]] = {c: [] for c in ids}
    for r in rows:
        change = TierChange(r["effective_at"], Tier(r["from_tier"]), Tier(r["to_tier"]))
        out[r["customer_id"]].append(change)
    return out


async def list_customers(pool: asyncpg.Pool, *, limit: int, after: str | None) -> list[CustomerRow]:
    """Keyset pagination by id: stable while customers are being created."""
    return [_customer(row) for row in await pool.fetch(LIST_CUSTOMERS, after, limit)]


async def add_payment_method(
    pool: asyncpg.Pool, *, method_id: str, customer_id: str, type_: str, token: str
) -> PaymentMethodRow:
    row = await pool.fetchrow(INSERT_PAYMENT_METHOD, method_id, customer_id, type_, token)
    assert row is not None
    return PaymentMethodRow(row["id"], row["type"], row["created_at"])
