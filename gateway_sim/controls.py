"""Test and inspection endpoints under /_sim: what was captured, faults to inject, reset."""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from gateway_sim.state import Faults, SimError, SimState, get_sim

log = logging.getLogger("gateway_sim")
router = APIRouter(prefix="/_sim", tags=["simulator"])
Sim = Annotated[SimState, Depends(get_sim)]


class FaultsBody(BaseModel):
    delay_after_capture_ms: int = Field(ge=0, le=600_000)
    count: int = Field(ge=0, le=10_000)


def _not_in_production(sim: SimState) -> None:
    if sim.settings.environment == "production":
        raise SimError(403, "forbidden", "simulator controls are disabled in production")


@router.get("/charges")
async def list_charges(
    sim: Sim, bill_id: str | None = None, idempotency_key: str | None = None
) -> dict[str, Any]:
    """Stored charges; `captured` is true once money moved (a settled transfer included)."""
    rows = sim.store.charges(bill_id=bill_id, idempotency_key=idempotency_key)
    charges = [
        {
            "gateway_reference": row.reference,
            "idempotency_key": row.idempotency_key,
            "status": row.status,
            "captured": row.status == "succeeded",
            "amount": str(row.amount),
            "currency": row.currency,
            "method_type": row.method_type,
            "authorization_code": row.authorization_code,
            "decline_code": row.decline_code,
            "decline_kind": row.decline_kind,
            "metadata": row.metadata,
            "event_id": row.event_id,
            "webhook_state": row.webhook_state,
            "webhook_attempts": row.webhook_attempts,
            "created_at": row.created_at,
        }
        for row in rows
    ]
    return {"charges": charges, "captures": sum(1 for c in charges if c["captured"])}


@router.get("/refunds")
async def list_refunds(sim: Sim, charge_reference: str | None = None) -> dict[str, Any]:
    rows = sim.store.refunds(charge_reference)
    refunds = [
        {
            "gateway_reference": row.reference,
            "idempotency_key": row.idempotency_key,
            "charge_reference": row.charge_reference,
            "amount": str(row.amount),
            "currency": row.currency,
            "reason": row.reason,
            "status": row.status,
            "created_at": row.created_at,
        }
        for row in rows
    ]
    total = sum((row.amount for row in rows if row.status == "succeeded"), Decimal(0))
    return {"refunds": refunds, "refunded_total": str(total)}


@router.post("/faults")
async def set_faults(body: FaultsBody, sim: Sim) -> FaultsBody:
    _not_in_production(sim)
    sim.faults = Faults(body.delay_after_capture_ms, body.count)
    log.info(
        "fault armed: next %d captures answer after %d ms", body.count, body.delay_after_capture_ms
    )
    return body


@router.post("/reset")
async def reset(sim: Sim) -> dict[str, bool]:
    _not_in_production(sim)
    await sim.settler.cancel_all()
    sim.reset()
    log.info("simulator reset")
    return {"ok": True}
