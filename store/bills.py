"""Named SQL for bills, their append-only ledger, charge attempts and refund reservations.

Every write is idempotent by a key the caller derives from its workflow id and
step, so an activity retried after a crash finds what its first try wrote.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import asyncpg

from billing.ledger import COLLECTION_ENDED_BY
from store.db import Conn

LOCK_PERIOD = "SELECT pg_advisory_xact_lock(hashtext($1::text || ':' || $2::text))"

BILL_COLUMNS = """id, customer_id, period, kind, tier, currency, lines, subtotal, tax, total,
    workflow_id, idempotency_key, void_reason, created_at"""

FIND_CYCLE_BILL = f"""
SELECT {BILL_COLUMNS} FROM bills
WHERE customer_id = $1::text AND period = $2::text AND kind = 'cycle'"""

FIND_BILL_BY_KEY = f"SELECT {BILL_COLUMNS} FROM bills WHERE idempotency_key = $1::text"

BILL_CURRENCY = "SELECT currency FROM bills WHERE id = $1::text"

GET_BILL = f"SELECT {BILL_COLUMNS} FROM bills WHERE id = $1::text"

GET_BILL_FOR_UPDATE = f"SELECT {BILL_COLUMNS} FROM bills WHERE id = $1::text FOR UPDATE"

LIST_CUSTOMER_BILLS = f"""
SELECT {BILL_COLUMNS} FROM bills WHERE customer_id = $1::text ORDER BY created_at, id"""

INSERT_BILL = """
INSERT INTO bills (id, customer_id, period, kind, tier, currency, lines, subtotal, tax, total,
                   workflow_id, idempotency_key)
VALUES ($1::text, $2::text, $3::text, $4::text, $5::text, $6::text, $7::jsonb,
        $8::numeric, $9::numeric, $10::numeric, $11::text, $12::text)
ON CONFLICT DO NOTHING"""

SET_VOID_REASON = "UPDATE bills SET void_reason = $2::text WHERE id = $1::text"

INSERT_ENTRY = """
INSERT INTO ledger_entries (idempotency_key, bill_id, customer_id, kind, amount, currency,
                            gateway_reference, memo)
VALUES ($1::text, $2::text, $3::text, $4::text, $5::numeric, $6::text, $7::text, $8::text)
ON CONFLICT DO NOTHING
RETURNING id"""

BILL_ENTRIES = """
SELECT kind, amount, gateway_reference, created_at FROM ledger_entries
WHERE bill_id = $1::text ORDER BY id"""

UPSERT_ATTEMPT = """
INSERT INTO charge_attempts (idempotency_key, bill_id, status, method, payment_method_id, amount,
                             gateway_reference, authorization_code, decline_code, message)
VALUES ($1::text, $2::text, $3::text, $4::text, $5::text, $6::numeric, $7::text, $8::text,
        $9::text, $10::text)
ON CONFLICT (idempotency_key) DO UPDATE SET
    status = EXCLUDED.status,
    gateway_reference = COALESCE(EXCLUDED.gateway_reference, charge_attempts.gateway_reference),
    authorization_code = EXCLUDED.authorization_code,
    decline_code = EXCLUDED.decline_code,
    message = EXCLUDED.message,
    updated_at = now()
WHERE charge_attempts.status = 'pending'
RETURNING id"""

# Money found outside the saga settles the attempt that was waiting for it (frees the claim).
SETTLE_ATTEMPT_BY_REFERENCE = """
UPDATE charge_attempts SET status = 'succeeded', updated_at = now()
WHERE gateway_reference = $1::text AND status = 'pending'"""

CLAIM_ATTEMPT = """
INSERT INTO charge_attempts (idempotency_key, bill_id, status, method, payment_method_id, amount)
VALUES ($1::text, $2::text, 'pending', $3::text, $4::text, $5::numeric)"""

ATTEMPT_BY_KEY = """
SELECT bill_id, status, method, payment_method_id, amount, gateway_reference,
       now() - at AS age
FROM charge_attempts
WHERE idempotency_key = $1::text"""

BILL_ATTEMPTS = """
SELECT at, status, method, gateway_reference, authorization_code, decline_code, message
FROM charge_attempts WHERE bill_id = $1::text ORDER BY id"""

RESERVED_REFUNDS = """
SELECT COALESCE(sum(amount), 0) FROM refunds WHERE bill_id = $1::text AND status = 'reserved'"""

INSERT_REFUND = """
INSERT INTO refunds (id, bill_id, amount, currency, reason, status, workflow_id, charge_reference,
                     gateway_key)
VALUES ($1::text, $2::text, $3::numeric, $4::text, $5::text, 'reserved', $6::text, $7::text,
        $8::text)"""

GET_REFUND = """
SELECT id, bill_id, amount, currency, status, reason, charge_reference, gateway_key
FROM refunds WHERE id = $1::text"""

BILL_CUSTOMER_ID = "SELECT customer_id FROM bills WHERE id = $1::text"

# Each capture of a bill with what is still refundable on it: refunds in flight count.
CAPTURES_REFUNDABLE = """
SELECT e.gateway_reference, e.amount,
       e.amount - coalesce((
           SELECT sum(r.amount) FROM refunds r
           WHERE r.bill_id = e.bill_id AND r.status IN ('reserved', 'succeeded')
             AND coalesce(r.charge_reference, (
                 SELECT f.gateway_reference FROM ledger_entries f
                 WHERE f.bill_id = e.bill_id AND f.kind = 'captured' ORDER BY f.id LIMIT 1
             )) = e.gateway_reference), 0) AS refundable
FROM ledger_entries e
WHERE e.bill_id = $1::text AND e.kind = 'captured' ORDER BY e.id"""

ATTEMPT_IN_FLIGHT = """
SELECT idempotency_key, status, method, payment_method_id, amount, gateway_reference
FROM charge_attempts WHERE bill_id = $1::text AND status = 'pending'"""

FINISH_REFUND = """
UPDATE refunds SET status = $2::text, gateway_reference = COALESCE($3::text, gateway_reference),
                   updated_at = now()
WHERE id = $1::text AND status = 'reserved'"""

INSERT_SAGA_NOTE = """
INSERT INTO saga_events (workflow_id, customer_id, bill_id, step, message, idempotency_key)
VALUES ($1::text, $2::text, $3::text, $4::text, $5::text, $6::text)
ON CONFLICT (idempotency_key) DO NOTHING"""

# Bills a dunning saga may still be collecting: no entry of the kinds $2 (the domain's
# COLLECTION_ENDED_BY, passed by open_bill_ids) on them.
OPEN_BILLS = """
SELECT b.id FROM bills b
WHERE b.customer_id = $1::text
  AND NOT EXISTS (SELECT 1 FROM ledger_entries e
                  WHERE e.bill_id = b.id AND e.kind = ANY($2::text[]))"""


async def open_bill_ids(pool: asyncpg.Pool | Conn, customer_id: str) -> list[str]:
    """The customer's bills that nothing has stopped collecting (`COLLECTION_ENDED_BY`)."""
    ended = sorted(kind.value for kind in COLLECTION_ENDED_BY)
    return [row["id"] for row in await pool.fetch(OPEN_BILLS, customer_id, ended)]


async def lock_period(conn: Conn, customer_id: str, period: str) -> None:
    """Exclusive twin of usage ingestion's shared lock: no event slips into a bill being built."""
    await conn.execute(LOCK_PERIOD, customer_id, period)


async def insert_bill(conn: Conn, values: dict[str, Any]) -> None:
    await conn.execute(
        INSERT_BILL,
        values["id"],
        values["customer_id"],
        values["period"],
        values["kind"],
        values["tier"],
        values["currency"],
        values["lines"],
        values["subtotal"],
        values["tax"],
        values["total"],
        values["workflow_id"],
        values["idempotency_key"],
    )


async def add_entry(
    conn: Conn,
    *,
    key: str,
    bill_id: str,
    customer_id: str,
    kind: str,
    amount: Decimal,
    currency: str,
    gateway_reference: str | None = None,
    memo: str = "",
) -> bool:
    """Append a ledger entry once; False when the key was already written."""
    row_id = await conn.fetchval(
        INSERT_ENTRY, key, bill_id, customer_id, kind, amount, currency, gateway_reference, memo
    )
    return row_id is not None
