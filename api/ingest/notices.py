"""Usage-limit notices after a request: each customer's hour, judged by the domain's
`limit_notices`, written once per customer, window and kind (store/limit_notices.py)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

import asyncpg

from api.ingest.plans import StampedPlan
from billing.catalog import UsageKind
from billing.metering import limit_notices
from store import limit_notices as notices_store
from store.limiter import Reservation

_HOUR_S = 3600


async def notify_limits(
    pool: asyncpg.Pool,
    reservations: Mapping[str, Reservation],
    plans: Mapping[str, StampedPlan],
) -> None:
    """Each notice a customer's reservation makes due, once; most are due none, and cost
    no database round trip."""
    for cid, r in reservations.items():
        kinds = limit_notices(limit=r.limit, count=r.count, allowed=r.allowed)
        if not kinds:
            continue
        window_start = r.reset_at - _HOUR_S
        data = {
            "customer_id": cid,
            "tier": plans[cid].plan.tier.value,
            "kind": UsageKind.API_CALL.value,
            "limit": r.limit,
            "used": r.count if r.allowed else r.count - r.quantity,
            "refused": 0 if r.allowed else r.quantity,
            "window_start": datetime.fromtimestamp(window_start, UTC),
            "window_end": datetime.fromtimestamp(r.reset_at, UTC),
        }
        for kind in kinds:
            await notices_store.notify_once(
                pool, customer_id=cid, kind=kind, window_start=window_start, data=data
            )
