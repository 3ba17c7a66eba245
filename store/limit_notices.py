"""Usage-limit notices: one event per customer, hour window and kind, with its dedupe row."""

from __future__ import annotations

from typing import Any

import asyncpg

from store.outbox import emit

INSERT_NOTICE = """
INSERT INTO usage_limit_notices (customer_id, window_start, kind)
VALUES ($1::text, to_timestamp($2::bigint), $3::text)
ON CONFLICT DO NOTHING
RETURNING 1"""


async def notify_once(
    pool: asyncpg.Pool, *, customer_id: str, kind: str, window_start: int, data: dict[str, Any]
) -> bool:
    """Write the notice and its outbox event in one transaction; False if already sent."""
    async with pool.acquire() as conn, conn.transaction():
        if await conn.fetchval(INSERT_NOTICE, customer_id, window_start, kind) is None:
            return False
        await emit(conn, type=kind, customer_id=customer_id, data=data)
        return True
