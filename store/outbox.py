"""The transactional outbox: an event is inserted in the transaction of the change it describes.

`emit` takes the caller's connection, inside the caller's `conn.transaction()`: the event
and the change commit together or not at all, and the customer's sequence number is taken
in that same transaction, so a rolled-back change leaves neither an event nor a gap.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from billing.events import event_data, event_type
from store.db import Conn

# '' stands for "no customer" (account events such as webhook_endpoint.disabled).
NEXT_SEQUENCE = """
INSERT INTO customer_event_sequences AS s (customer_id, last)
VALUES (coalesce($1::text, ''), 1)
ON CONFLICT (customer_id) DO UPDATE SET last = s.last + 1
RETURNING last"""

# data as text cast to jsonb: the same on a pool connection (jsonb codec) or a plain one.
INSERT_EVENT = """
INSERT INTO events (id, type, customer_id, sequence, data)
VALUES ($1::text, $2::text, $3::text, $4::bigint, $5::text::jsonb)"""

_EVENT_COLUMNS = "id, position, type, customer_id, sequence, data::text AS data, created_at"

GET_EVENT = f"SELECT {_EVENT_COLUMNS} FROM events WHERE id = $1::text"

# Newest first; `after` is the position of the last event of the page before.
LIST_EVENTS = f"""
SELECT {_EVENT_COLUMNS} FROM events
WHERE ($1::text IS NULL OR type = $1::text)
  AND ($2::text IS NULL OR customer_id = $2::text)
  AND ($3::bigint IS NULL OR position < $3::bigint)
ORDER BY position DESC
LIMIT $4::int"""

POSITION_OF = "SELECT position FROM events WHERE id = $1::text"


@dataclass(frozen=True)
class EventRow:
    id: str
    position: int
    type: str
    customer_id: str | None
    sequence: int
    data: dict[str, Any]
    created_at: datetime


def new_event_id() -> str:
    return "evt_" + secrets.token_hex(12)


def event_row(row: asyncpg.Record) -> EventRow:
    return EventRow(
        id=row["id"],
        position=row["position"],
        type=row["type"],
        customer_id=row["customer_id"],
        sequence=row["sequence"],
        data=json.loads(row["data"]),
        created_at=row["created_at"],
    )


async def emit(conn: Conn, *, type: str, customer_id: str | None, data: Mapping[str, Any]) -> str:
    """Insert one event in the caller's transaction; its id. Secret keys never reach it."""
    if not conn.is_in_transaction():
        # Outside a transaction the event would commit even if the change then failed.
        raise RuntimeError("emit() belongs inside the transaction of the change it describes")
    kind = event_type(type)
    body = json.dumps(event_data(data), separators=(",", ":"), ensure_ascii=False)
    sequence = await conn.fetchval(NEXT_SEQUENCE, customer_id)
    event_id = new_event_id()
    await conn.execute(INSERT_EVENT, event_id, kind.value, customer_id, sequence, body)
    return event_id


async def get_event(conn: Conn | asyncpg.Pool, event_id: str) -> EventRow | None:
    row = await conn.fetchrow(GET_EVENT, event_id)
    return None if row is None else event_row(row)


async def list_events(
    pool: asyncpg.Pool,
    *,
    type: str | None,
    customer_id: str | None,
    after: str | None,
    limit: int,
) -> list[EventRow] | None:
    """A page, newest first; None when `after` names no event."""
    before: int | None = None
    if after is not None:
        before = await pool.fetchval(POSITION_OF, after)
        if before is None:
            return None
    rows = await pool.fetch(LIST_EVENTS, type, customer_id, before, limit)
    return [event_row(r) for r in rows]
