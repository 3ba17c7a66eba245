"""The seller's webhook endpoints, where each event stands with each, and every attempt."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

from store.db import Conn

_ENDPOINT_COLUMNS = """
    id, url, description, events, enabled, disabled_reason, secret, previous_secret,
    previous_secret_expires_at, created_at, updated_at"""

INSERT_ENDPOINT = f"""
INSERT INTO webhook_endpoints (id, url, description, events, secret)
VALUES ($1::text, $2::text, $3::text, $4::text[], $5::text)
RETURNING {_ENDPOINT_COLUMNS}"""

GET_ENDPOINT = f"SELECT {_ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE id = $1::text"

LIST_ENDPOINTS = f"""
SELECT {_ENDPOINT_COLUMNS} FROM webhook_endpoints
WHERE $1::text IS NULL OR id > $1::text ORDER BY id LIMIT $2::int"""

# A NULL parameter leaves its column as it is; enabling clears the reason it was disabled.
UPDATE_ENDPOINT = f"""
UPDATE webhook_endpoints SET
    url = coalesce($2::text, url),
    description = coalesce($3::text, description),
    events = coalesce($4::text[], events),
    enabled = coalesce($5::boolean, enabled),
    disabled_reason = CASE WHEN $5::boolean IS NULL THEN disabled_reason
                           WHEN $5::boolean THEN NULL
                           ELSE 'disabled by the operator' END,
    updated_at = now()
WHERE id = $1::text
RETURNING {_ENDPOINT_COLUMNS}"""

DELETE_ENDPOINT = "DELETE FROM webhook_endpoints WHERE id = $1::text RETURNING id"

# The old secret keeps signing until `expires`; a zero overlap forgets it at once.
ROTATE_SECRET = f"""
UPDATE webhook_endpoints SET
    previous_secret = CASE WHEN $3::interval > interval '0' THEN secret END,
    previous_secret_expires_at = CASE WHEN $3::interval > interval '0' THEN now() + $3::interval
                                      END,
    secret = $2::text,
    updated_at = now()
WHERE id = $1::text
RETURNING {_ENDPOINT_COLUMNS}"""

LIST_DELIVERIES = """
SELECT d.id, d.event_id, e.type AS event_type, d.workflow_id, d.attempt, d.status_code,
       d.latency_ms, d.error, d.next_try_at, d.delivered, d.created_at
FROM webhook_deliveries d JOIN events e ON e.id = d.event_id
WHERE d.endpoint_id = $1::text
  AND ($2::text IS NULL OR d.event_id = $2::text)
  AND ($3::timestamptz IS NULL OR (d.created_at, d.id) < ($3::timestamptz, $4::text))
ORDER BY d.created_at DESC, d.id DESC
LIMIT $5::int"""

DELIVERY_CURSOR = "SELECT created_at, id FROM webhook_deliveries WHERE id = $1::text"

STATES_OF_EVENT = """
SELECT endpoint_id, workflow_id, status, attempts, last_status_code, next_try_at, updated_at
FROM webhook_delivery_states WHERE event_id = $1::text ORDER BY endpoint_id"""

# Endpoints that take this event now: enabled, subscribed to its type (or to all).
SUBSCRIBED = """
SELECT id FROM webhook_endpoints
WHERE enabled AND (cardinality(events) = 0 OR $1::text = ANY(events))
  AND ($2::text IS NULL OR id = $2::text)
ORDER BY id"""


@dataclass(frozen=True)
class EndpointRow:
    id: str
    url: str
    description: str
    events: list[str]
    enabled: bool
    disabled_reason: str | None
    secret: str
    previous_secret: str | None
    previous_secret_expires_at: datetime | None
    created_at: datetime
    updated_at: datetime

    def signing_secrets(self, now: datetime) -> list[str]:
        """The current secret, and the previous one while its overlap lasts."""
        found = [self.secret]
        expires = self.previous_secret_expires_at
        if self.previous_secret and expires is not None and now < expires:
            found.append(self.previous_secret)
        return found


def endpoint_row(row: asyncpg.Record) -> EndpointRow:
    return EndpointRow(
        id=row["id"],
        url=row["url"],
        description=row["description"],
        events=list(row["events"]),
        enabled=row["enabled"],
        disabled_reason=row["disabled_reason"],
        secret=row["secret"],
        previous_secret=row["previous_secret"],
        previous_secret_expires_at=row["previous_secret_expires_at"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def new_endpoint_id() -> str:
    return "we_" + secrets.token_hex(8)


async def create_endpoint(
    pool: asyncpg.Pool, *, url: str, description: str, events: list[str], secret: str
) -> EndpointRow:
    row = await pool.fetchrow(INSERT_ENDPOINT, new_endpoint_id(), url, description, events, secret)
    assert row is not None
    return endpoint_row(row)


async def get_endpoint(conn: Conn | asyncpg.Pool, endpoint_id: str) -> EndpointRow | None:
    row = await conn.fetchrow(GET_ENDPOINT, endpoint_id)
    return None if row is None else endpoint_row(row)


async def list_endpoints(pool: asyncpg.Pool, *, after: str | None, limit: int) -> list[EndpointRow]:
    return [endpoint_row(r) for r in await pool.fetch(LIST_ENDPOINTS, after, limit)]


async def update_endpoint(
    pool: asyncpg.Pool,
    endpoint_id: str,
    *,
    url: str | None,
    description: str | None,
    events: list[str] | None,
    enabled: bool | None,
) -> EndpointRow | None:
    row = await pool.fetchrow(UPDATE_ENDPOINT, endpoint_id, url, description, events, enabled)
    return None if row is None else endpoint_row(row)


async def delete_endpoint(pool: asyncpg.Pool, endpoint_id: str) -> bool:
    return await pool.fetchval(DELETE_ENDPOINT, endpoint_id) is not None


async def rotate_secret(
    pool: asyncpg.Pool, endpoint_id: str, *, secret: str, overlap: timedelta
) -> EndpointRow | None:
    row = await pool.fetchrow(ROTATE_SECRET, endpoint_id, secret, overlap)
    return None if row is None else endpoint_row(row)
