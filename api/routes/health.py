"""`GET /healthz`: 200 when Postgres, Redis and Temporal all answer; says which fails."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.auth import StateDep
from store.db import ping

router = APIRouter()

_TIMEOUT_S = 2.0


async def _check(name: str, probe: Any) -> tuple[str, str]:
    try:
        await asyncio.wait_for(probe, timeout=_TIMEOUT_S)
    except Exception as exc:  # any failure is "down": the answer names it
        return name, f"down: {type(exc).__name__}"
    return name, "ok"


@router.get(
    "/healthz",
    tags=["health"],
    responses={503: {"description": "A dependency is down; `checks` names which"}},
)
async def healthz(state: StateDep) -> JSONResponse:
    """Each dependency checked separately and concurrently, within two seconds."""
    results = await asyncio.gather(
        _check("postgres", ping(state.pool)),
        _check("redis", state.redis.ping()),
        _check("temporal", state.temporal.service_client.check_health()),
    )
    checks = dict(results)
    healthy = all(v == "ok" for v in checks.values())
    return JSONResponse(
        status_code=200 if healthy else 503,
        content={"status": "ok" if healthy else "degraded", "checks": checks},
    )
