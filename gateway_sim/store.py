"""The simulator's own storage: one SQLite file, idempotency keys UNIQUE, tokens never stored.

A fault a token asked for is stored as its effect (`answers_lost`), never as the token.

Every method is synchronous and runs on the event loop thread, so a read-then-write in one
call is atomic with respect to other requests; the UNIQUE constraints back that up.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS charges (
    reference          TEXT PRIMARY KEY,
    idempotency_key    TEXT NOT NULL UNIQUE,
    amount             TEXT NOT NULL,
    currency           TEXT NOT NULL,
    method_type        TEXT NOT NULL,
    description        TEXT NOT NULL,
    metadata           TEXT NOT NULL,
    bill_id            TEXT,
    status             TEXT NOT NULL CHECK (status IN ('succeeded', 'pending', 'failed')),
    authorization_code TEXT,
    decline_code       TEXT,
    decline_kind       TEXT,
    message            TEXT NOT NULL,
    planned            TEXT,
    settle_at          REAL,
    settled_at         INTEGER,
    event_id           TEXT,
    webhook_state      TEXT NOT NULL DEFAULT 'none',
    webhook_attempts   INTEGER NOT NULL DEFAULT 0,
    created_at         REAL NOT NULL,
    answers_lost       INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS charges_bill_id ON charges (bill_id);
CREATE TABLE IF NOT EXISTS refunds (
    reference        TEXT PRIMARY KEY,
    idempotency_key  TEXT NOT NULL UNIQUE,
    charge_reference TEXT NOT NULL REFERENCES charges (reference),
    amount           TEXT NOT NULL,
    currency         TEXT NOT NULL,
    reason           TEXT NOT NULL,
    status           TEXT NOT NULL,
    created_at       REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS refunds_charge ON refunds (charge_reference);
CREATE INDEX IF NOT EXISTS charges_created ON charges (created_at, reference);
CREATE INDEX IF NOT EXISTS refunds_created ON refunds (created_at, reference);
"""
# Columns added after the first release, for a file created before them.
_ADDED_COLUMNS = {"answers_lost": "INTEGER NOT NULL DEFAULT 0"}
# Keyset paging over (created_at, reference): both tables, `since` inclusive.
_PAGE = (
    " WHERE created_at >= :since AND (:after_at IS NULL OR created_at > :after_at"
    " OR (created_at = :after_at AND reference > :after_ref))"
    " ORDER BY created_at, reference LIMIT :limit"
)


def stamp() -> float:
    """Now, to the microsecond: listed as a datetime, it round-trips to the stored float."""
    return round(time.time(), 6)


@dataclass(frozen=True)
class ChargeRow:
    reference: str
    idempotency_key: str
    amount: Decimal
    currency: str
    method_type: str
    description: str
    metadata: dict[str, str]
    status: str
    authorization_code: str | None
    decline_code: str | None
    decline_kind: str | None
    message: str
    planned: dict[str, Any] | None
    settle_at: float | None
    settled_at: int | None
    event_id: str | None
    webhook_state: str
    webhook_attempts: int
    created_at: float
    answers_lost: bool = False  # every answer under this charge's key, and its refunds', is lost


@dataclass(frozen=True)
class RefundRow:
    reference: str
    idempotency_key: str
    charge_reference: str
    amount: Decimal
    currency: str
    reason: str
    status: str
    created_at: float


def _charge(row: sqlite3.Row) -> ChargeRow:
    values = dict(row)
    values.pop("bill_id")
    values["amount"] = Decimal(values["amount"])
    values["metadata"] = json.loads(values["metadata"])
    values["planned"] = json.loads(values["planned"]) if values["planned"] else None
    values["answers_lost"] = bool(values["answers_lost"])
    return ChargeRow(**values)


def _refund(row: sqlite3.Row) -> RefundRow:
    values = dict(row)
    values["amount"] = Decimal(values["amount"])
    return RefundRow(**values)


class Store:
    """Charges and refunds; `IntegrityError` on a duplicate key is left to the caller."""

    def __init__(self, path: str) -> None:
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        # Autocommit: each statement is its own transaction; nothing here spans two.
        self._db = sqlite3.connect(path, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA foreign_keys = ON")
        if path != ":memory:":
            self._db.execute("PRAGMA journal_mode = WAL")
        self._db.executescript(_SCHEMA)
        have = {row["name"] for row in self._db.execute("PRAGMA table_info(charges)")}
        for name, decl in _ADDED_COLUMNS.items():
            if name not in have:
                self._db.execute(f"ALTER TABLE charges ADD COLUMN {name} {decl}")

    def close(self) -> None:
        self._db.close()

    def insert_charge(self, row: ChargeRow) -> None:
        values = {
            **row.__dict__,
            "amount": str(row.amount),
            "metadata": json.dumps(row.metadata, sort_keys=True),
            "planned": json.dumps(row.planned) if row.planned is not None else None,
            "bill_id": row.metadata.get("bill_id"),
        }
        columns = ", ".join(values)
        params = ", ".join(f":{name}" for name in values)
        self._db.execute(f"INSERT INTO charges ({columns}) VALUES ({params})", values)

    def charge(self, reference: str) -> ChargeRow | None:
        found = self._db.execute("SELECT * FROM charges WHERE reference = ?", (reference,))
        row = found.fetchone()
        return _charge(row) if row else None

    def charge_by_key(self, key: str) -> ChargeRow | None:
        found = self._db.execute("SELECT * FROM charges WHERE idempotency_key = ?", (key,))
        row = found.fetchone()
        return _charge(row) if row else None

    def charges(self, *, bill_id: str | None, idempotency_key: str | None) -> list[ChargeRow]:
        found = self._db.execute(
            "SELECT * FROM charges WHERE (:bill IS NULL OR bill_id = :bill)"
            " AND (:key IS NULL OR idempotency_key = :key) ORDER BY created_at, rowid",
            {"bill": bill_id, "key": idempotency_key},
        )
        return [_charge(row) for row in found.fetchall()]

    def pending_settlements(self) -> list[ChargeRow]:
        found = self._db.execute("SELECT * FROM charges WHERE status = 'pending'")
        return [_charge(row) for row in found.fetchall()]

    def undelivered_webhooks(self) -> list[ChargeRow]:
        found = self._db.execute("SELECT * FROM charges WHERE webhook_state = 'pending'")
        return [_charge(row) for row in found.fetchall()]

    def settle(self, reference: str, event_id: str, settled_at: int) -> bool:
        """Reveal the planned outcome once; False if it was already settled."""
        row = self.charge(reference)
        if row is None or row.status != "pending" or row.planned is None:
            return False
        planned = row.planned
        cursor = self._db.execute(
            "UPDATE charges SET status = ?, authorization_code = ?, decline_code = ?,"
            " decline_kind = ?, message = ?, settled_at = ?, event_id = ?,"
            " webhook_state = 'pending' WHERE reference = ? AND status = 'pending'",
            (
                planned["status"],
                planned["authorization_code"],
                planned["decline_code"],
                planned["decline_kind"],
                planned["message"],
                settled_at,
                event_id,
                reference,
            ),
        )
        return cursor.rowcount == 1

    def record_webhook_attempt(self, reference: str, state: str) -> None:
        self._db.execute(
            "UPDATE charges SET webhook_attempts = webhook_attempts + 1, webhook_state = ?"
            " WHERE reference = ?",
            (state, reference),
        )

    def insert_refund(self, row: RefundRow) -> None:
        values = {**row.__dict__, "amount": str(row.amount)}
        columns = ", ".join(values)
        params = ", ".join(f":{name}" for name in values)
        self._db.execute(f"INSERT INTO refunds ({columns}) VALUES ({params})", values)

    def refund_by_key(self, key: str) -> RefundRow | None:
        found = self._db.execute("SELECT * FROM refunds WHERE idempotency_key = ?", (key,))
        row = found.fetchone()
        return _refund(row) if row else None

    def refunds(self, charge_reference: str | None) -> list[RefundRow]:
        found = self._db.execute(
            "SELECT * FROM refunds WHERE (:ref IS NULL OR charge_reference = :ref)"
            " ORDER BY created_at, rowid",
            {"ref": charge_reference},
        )
        return [_refund(row) for row in found.fetchall()]

    def refunded_total(self, charge_reference: str) -> Decimal:
        rows = self.refunds(charge_reference)
        return sum((r.amount for r in rows if r.status == "succeeded"), Decimal(0))

    def transactions_page(
        self, since: float, after: tuple[float, str] | None, limit: int
    ) -> list[ChargeRow | RefundRow]:
        """Up to `limit` charges and refunds from `since`, past `after`, oldest first."""
        params = {
            "since": since,
            "after_at": after[0] if after else None,
            "after_ref": after[1] if after else None,
            "limit": limit,
        }
        charges = [_charge(r) for r in self._db.execute("SELECT * FROM charges" + _PAGE, params)]
        refunds = [_refund(r) for r in self._db.execute("SELECT * FROM refunds" + _PAGE, params)]
        merged: list[ChargeRow | RefundRow] = [*charges, *refunds]
        merged.sort(key=lambda row: (row.created_at, row.reference))
        return merged[:limit]

    def reset(self) -> None:
        self._db.execute("DELETE FROM refunds")
        self._db.execute("DELETE FROM charges")
