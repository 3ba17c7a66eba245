"""Test and inspection endpoints under /_sim: what was captured, faults to inject, reset.

`POST /_sim/charges` is a capture made outside the service (as from a gateway dashboard),
carrying the bill id in its metadata for reconciliation to find.
"""

from __future__ import annotations

import logging
import uuid
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from billing.payments import PaymentMethodType, looks_like_card_number
from gateway_sim.charging import NewCharge, outcome_of, store_charge
from gateway_sim.decide import TOKEN_GATEWAY_TIMEOUT
from gateway_sim.state import Faults, SimError, SimState, envelope, get_sim

log = logging.getLogger("gateway_sim")
router = APIRouter(prefix="/_sim", tags=["simulator"])
Sim = Annotated[SimState, Depends(get_sim)]


class FaultsBody(BaseModel):
    delay_after_capture_ms: int = Field(ge=0, le=600_000)
    count: int = Field(ge=0, le=10_000)


class DashboardCharge(BaseModel):
    bill_id: str = Field(min_length=1, max_length=255)
    amount: Decimal = Field(gt=0)
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    token: str = Field(min_length=1, max_length=255)
    method_type: PaymentMethodType = PaymentMethodType.CREDIT_CARD
    customer_id: str | None = Field(default=None, min_length=1, max_length=255)


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
            "answers_lost": row.answers_lost,
        }
        for row in rows
    ]
    return {"charges": charges, "captures": sum(1 for c in charges if c["captured"])}


@router.post("/charges", response_model=None)
async def dashboard_charge(body: DashboardCharge, sim: Sim) -> dict[str, Any] | JSONResponse:
    """A capture outside the service: a fresh key, decided by its token like any charge."""
    _not_in_production(sim)
    if looks_like_card_number(body.token):
        raise SimError(422, "card_number_refused", "send a payment token, not a card number")
    if body.token == TOKEN_GATEWAY_TIMEOUT:
        return envelope(504, "gateway_timeout", "the gateway did not answer in time; retry")
    metadata = {"bill_id": body.bill_id, "source": "dashboard"}
    if body.customer_id is not None:
        metadata["customer_id"] = body.customer_id
    new = NewCharge(
        idempotency_key=f"dashboard-{uuid.uuid4()}",
        amount=body.amount,
        currency=body.currency,
        method_type=body.method_type,
        token=body.token,
        description="captured from the dashboard",
        metadata=metadata,
    )
    row = store_charge(sim, new)
    log.info("dashboard charge %s for bill %s: %s", row.reference, body.bill_id, row.status)
    return {**outcome_of(row).model_dump(mode="json"), "idempotency_key": row.idempotency_key}


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
