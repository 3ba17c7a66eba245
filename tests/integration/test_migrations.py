"""Migrations on a fresh database give the schema that enforces exactly-once; again, nothing."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
import pytest_asyncio

from store.migrate import migrate, migration_files

TABLES = {
    "customers",
    "payment_methods",
    "tier_changes",
    "usage_events",
    "bills",
    "ledger_entries",
    "charge_attempts",
    "refunds",
    "saga_events",
    "schema_migrations",
}

_SNAPSHOT = """
SELECT 'column' AS kind, table_name || '.' || column_name || ' ' || data_type AS what
  FROM information_schema.columns WHERE table_schema = 'public'
UNION ALL
SELECT 'index', indexdef FROM pg_indexes WHERE schemaname = 'public'
UNION ALL
SELECT 'constraint', conrelid::regclass || ' ' || pg_get_constraintdef(oid)
  FROM pg_constraint WHERE connamespace = 'public'::regnamespace
ORDER BY 1, 2
"""

_UNIQUE_INDEXES = """
SELECT i.indexrelid::regclass::text AS name,
       i.indrelid::regclass::text AS table_name,
       array_agg(a.attname ORDER BY k.ord) AS columns,
       pg_get_expr(i.indpred, i.indrelid) AS predicate,
       i.indisprimary AS is_primary
  FROM pg_index i
  JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord) ON true
  JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
 WHERE i.indisunique AND i.indrelid::regclass::text = ANY($1::text[])
 GROUP BY i.indexrelid, i.indrelid, i.indpred, i.indisprimary
"""


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


@pytest_asyncio.fixture
async def fresh_db(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A new, empty database on the session's server, dropped afterwards."""
    name = f"migrations_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(_with_database(database_url, "postgres"))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')  # a generated identifier, not input
        conn = await asyncpg.connect(_with_database(database_url, name))
        try:
            yield conn
        finally:
            await conn.close()
            await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def _unique_indexes(conn: asyncpg.Connection, tables: list[str]) -> list[asyncpg.Record]:
    return list(await conn.fetch(_UNIQUE_INDEXES, tables))


async def test_fresh_database_gets_every_table(fresh_db: asyncpg.Connection) -> None:
    applied = await migrate(fresh_db)
    assert applied == [path.name for _, path in migration_files()]
    rows = await fresh_db.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    assert TABLES <= {r["tablename"] for r in rows}


async def test_constraints_that_enforce_exactly_once(fresh_db: asyncpg.Connection) -> None:
    await migrate(fresh_db)
    tables = ["usage_events", "bills", "ledger_entries", "charge_attempts"]
    found = {
        (r["table_name"], tuple(r["columns"]), r["predicate"], r["is_primary"])
        for r in await _unique_indexes(fresh_db, tables)
    }
    assert ("usage_events", ("customer_id", "event_id"), None, True) in found
    assert ("bills", ("customer_id", "period"), "(kind = 'cycle'::text)", False) in found
    assert ("ledger_entries", ("idempotency_key",), None, False) in found
    assert ("charge_attempts", ("idempotency_key",), None, False) in found
    names = {r["name"] for r in await _unique_indexes(fresh_db, ["bills"])}
    assert "bills_one_cycle_per_period" in names


async def test_duplicates_are_refused_by_the_database(fresh_db: asyncpg.Connection) -> None:
    await migrate(fresh_db)
    now = datetime.now(UTC)
    await fresh_db.execute(
        "INSERT INTO customers (id, name, email, tier, tax_rate, api_key_hash, started_at)"
        " VALUES ('c1', 'Ada', 'ada@example.com', 'starter', 0, 'h1', $1::timestamptz)",
        now,
    )
    usage = (
        "INSERT INTO usage_events (customer_id, event_id, kind, quantity, occurred_at, period,"
        " tier, unit_price, cost) VALUES ('c1', 'e1', 'api_call', 1, $1::timestamptz, '2025-01',"
        " 'starter', 0.001, 0.001)"
    )
    await fresh_db.execute(usage, now)
    with pytest.raises(asyncpg.UniqueViolationError):
        await fresh_db.execute(usage, now)

    bill = (
        "INSERT INTO bills (id, customer_id, period, kind, tier, currency, lines, subtotal, tax,"
        " total, workflow_id, idempotency_key) VALUES ($1::text, 'c1', '2025-01', $2::text,"
        " 'starter', 'USD', '[]'::jsonb, 10, 0, 10, 'wf', $1::text)"
    )
    await fresh_db.execute(bill, "b1", "cycle")
    await fresh_db.execute(bill, "b2", "upgrade")  # an upgrade bill in a billed period is fine
    with pytest.raises(asyncpg.UniqueViolationError, match="bills_one_cycle_per_period"):
        await fresh_db.execute(bill, "b3", "cycle")

    ledger = (
        "INSERT INTO ledger_entries (idempotency_key, bill_id, customer_id, kind, amount,"
        " currency) VALUES ('k1', 'b1', 'c1', 'captured', 10, 'USD')"
    )
    await fresh_db.execute(ledger)
    with pytest.raises(asyncpg.UniqueViolationError):
        await fresh_db.execute(ledger)
    attempt = (
        "INSERT INTO charge_attempts (idempotency_key, bill_id, status, method, amount)"
        " VALUES ('a1', 'b1', 'pending', 'credit_card', 10)"
    )
    await fresh_db.execute(attempt)
    with pytest.raises(asyncpg.UniqueViolationError):
        await fresh_db.execute(attempt)


async def test_money_is_never_a_float_column(fresh_db: asyncpg.Connection) -> None:
    await migrate(fresh_db)
    floats = await fresh_db.fetch(
        "SELECT table_name, column_name FROM information_schema.columns"
        " WHERE table_schema = 'public' AND data_type IN ('real', 'double precision', 'money')"
    )
    assert [tuple(r) for r in floats] == []


async def test_applying_again_changes_nothing(fresh_db: asyncpg.Connection) -> None:
    await migrate(fresh_db)
    before = [tuple(r) for r in await fresh_db.fetch(_SNAPSHOT)]
    versions = await fresh_db.fetchval("SELECT count(*) FROM schema_migrations")

    assert await migrate(fresh_db) == []
    assert [tuple(r) for r in await fresh_db.fetch(_SNAPSHOT)] == before
    assert await fresh_db.fetchval("SELECT count(*) FROM schema_migrations") == versions
    assert versions == len(migration_files())


async def test_session_database_is_migrated(db_pool: asyncpg.Pool) -> None:
    """The `database_url` fixture hands out a migrated database."""
    async with db_pool.acquire() as conn:
        versions = await conn.fetch("SELECT name FROM schema_migrations ORDER BY version")
    assert [r["name"] for r in versions] == [path.name for _, path in migration_files()]


async def test_a_migration_edited_after_it_ran_is_refused(
    fresh_db: asyncpg.Connection, tmp_path
) -> None:
    from store.migrate import MigrationChanged

    for _, path in migration_files():
        (tmp_path / path.name).write_text(path.read_text())
    await migrate(fresh_db, tmp_path)
    first = sorted(tmp_path.glob("*.sql"))[0]
    first.write_text(first.read_text() + "\n-- edited later\n")
    with pytest.raises(MigrationChanged, match=first.name):
        await migrate(fresh_db, tmp_path)
