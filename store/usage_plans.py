"""What the ingest path reads about a customer: its usage plan's terms and their stamp.

The stamp is `usage_plan_stamp` (migrations/0006), the same function `record_usage` checks
a cached plan against, read in the same statement as the terms it stands for.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

PLANS = """
SELECT c.id, c.tier, c.status, c.auto_upgrade, c.overrides, c.started_at,
       (SELECT max(tc.effective_at) FROM tier_changes tc WHERE tc.customer_id = c.id)
           AS tier_since,
       EXISTS (SELECT 1 FROM payment_methods pm WHERE pm.customer_id = c.id)
           AS has_payment_method,
       usage_plan_stamp(c.id) AS stamp
FROM customers c WHERE c.id = ANY($1::text[])"""


@dataclass(frozen=True, slots=True)
class PlanRow:
    id: str
    tier: str
    status: str
    auto_upgrade: bool
    overrides: dict[str, Any]
    started_at: datetime
    tier_since: datetime | None
    has_payment_method: bool
    stamp: str


async def plan_rows(pool: asyncpg.Pool, customer_ids: list[str]) -> dict[str, PlanRow]:
    """Several customers in one round trip; unknown ids are simply absent."""
    rows = await pool.fetch(PLANS, customer_ids)
    return {
        r["id"]: PlanRow(
            id=r["id"],
            tier=r["tier"],
            status=r["status"],
            auto_upgrade=r["auto_upgrade"],
            overrides=dict(r["overrides"] or {}),
            started_at=r["started_at"],
            tier_since=r["tier_since"],
            has_payment_method=r["has_payment_method"],
            stamp=r["stamp"],
        )
        for r in rows
    }
