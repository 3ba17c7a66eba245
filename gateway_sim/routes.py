"""The gateway's public API: charges and refunds, each idempotent by its key.

A key seen before answers the first stored result and never captures twice; the same key
with a different amount or currency is a 409. Tokens are used to decide and then dropped:
never stored, never logged.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from billing.payments import (
    ChargeOutcome,
    ChargeStatus,
    DeclineKind,
    PaymentMethodType,
    RefundOutcome,
    looks_like_card_number,
)
from gateway_sim.decide import TOKEN_GATEWAY_TIMEOUT, Decision, decide, new_reference
from gateway_sim.state import SimError, SimState, envelope, get_sim
from gateway_sim.store import ChargeRow, RefundRow

log = logging.getLogger("gateway_sim")
router = APIRouter(prefix="/v1")
Sim = Annotated[SimState, Depends(get_sim)]
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$")]
Key = Annotated[str, Field(min_length=1, max_length=255)]


class ChargeBody(BaseModel):
    idempotency_key: Key
    amount: Decimal = Field(gt=0)
    currency: Currency
    method_type: PaymentMethodType
    token: str = Field(min_length=1, max_length=255)
    description: str = ""
    metadata: dict[str, str] = {}


class RefundBody(BaseModel):
    idempotency_key: Key
    charge_reference: str
    amount: Decimal = Field(gt=0)
    currency: Currency
    reason: str = ""


def outcome_of(row: ChargeRow) -> ChargeOutcome:
    return ChargeOutcome(
        status=ChargeStatus(row.status),
        gateway_reference=row.reference,
        amount=row.amount,
        currency=row.currency,
        authorization_code=row.authorization_code,
        decline_code=row.decline_code,
        decline_kind=DeclineKind(row.decline_kind) if row.decline_kind else None,
        message=row.message,
    )


def _replay(row: ChargeRow, body: ChargeBody) -> ChargeOutcome:
    if row.amount != body.amount or row.currency != body.currency:
        raise SimError(
            409,
            "idempotency_key_reused",
            f"idempotency key {body.idempotency_key} was used for {row.amount} {row.currency}",
        )
    log.info("charge %s key=%s replayed: %s", row.reference, row.idempotency_key, row.status)
    return outcome_of(row)


def _new_charge(sim: SimState, body: ChargeBody) -> ChargeRow:
    decision = decide(body.token, body.method_type, sim.rng, sim.settings.gateway_success_rate)
    now = time.time()
    pending = body.method_type is PaymentMethodType.BANK_TRANSFER
    # A bank transfer's outcome is decided now (keeping the seeded draws in request order)
    # and revealed at settlement.
    shown = (
        Decision(ChargeStatus.PENDING, message="Awaiting bank settlement") if pending else decision
    )
    delay = sim.settings.settlement_delay_delta.total_seconds()
    row = ChargeRow(
        reference=new_reference("ch"),
        idempotency_key=body.idempotency_key,
        amount=body.amount,
        currency=body.currency,
        method_type=body.method_type.value,
        description=body.description,
        metadata=body.metadata,
        status=shown.status.value,
        authorization_code=shown.authorization_code,
        decline_code=shown.decline_code,
        decline_kind=shown.decline_kind.value if shown.decline_kind else None,
        message=shown.message,
        planned=decision.as_json() if pending else None,
        settle_at=now + delay if pending else None,
        settled_at=None,
        event_id=None,
        webhook_state="none",
        webhook_attempts=0,
        created_at=now,
    )
    sim.store.insert_charge(row)
    return row


@router.post("/charges", response_model=ChargeOutcome)
async def create_charge(body: ChargeBody, sim: Sim) -> ChargeOutcome | JSONResponse:
    existing = sim.store.charge_by_key(body.idempotency_key)
    if existing is not None:
        return _replay(existing, body)
    if looks_like_card_number(body.token):
        raise SimError(422, "card_number_refused", "send a payment token, not a card number")
    if body.token == TOKEN_GATEWAY_TIMEOUT:
        log.info("charge key=%s: simulated gateway timeout, nothing stored", body.idempotency_key)
        return envelope(504, "gateway_timeout", "the gateway did not answer in time; retry")
    try:
        row = _new_charge(sim, body)
    except sqlite3.IntegrityError:
        # Another process stored this key between our read and write: answer its result.
        stored = sim.store.charge_by_key(body.idempotency_key)
        if stored is None:
            raise
        return _replay(stored, body)
    log.info("charge %s key=%s: %s", row.reference, row.idempotency_key, row.status)
    if row.settle_at is not None:
        sim.settler.schedule(row.reference, row.settle_at)
    if row.status == ChargeStatus.SUCCEEDED:
        delay = sim.faults.take()
        if delay:
            # The capture is already stored: a client that times out now has an unknown outcome.
            log.info(
                "charge %s key=%s: fault, answering in %.3fs",
                row.reference,
                row.idempotency_key,
                delay,
            )
            await asyncio.sleep(delay)
    return outcome_of(row)


@router.get("/charges/{reference}", response_model=ChargeOutcome)
async def get_charge(reference: str, sim: Sim) -> ChargeOutcome:
    row = sim.store.charge(reference)
    if row is None:
        raise SimError(404, "charge_not_found", f"no charge {reference}")
    return outcome_of(row)


def _refund_outcome(row: RefundRow) -> RefundOutcome:
    return RefundOutcome(
        status="succeeded" if row.status == "succeeded" else "failed",
        gateway_reference=row.reference,
        amount=row.amount,
        currency=row.currency,
        message=f"Refunded {row.amount} {row.currency}",
    )


def _check_refundable(sim: SimState, body: RefundBody) -> None:
    charge = sim.store.charge(body.charge_reference)
    if charge is None:
        raise SimError(404, "charge_not_found", f"no charge {body.charge_reference}")
    if charge.status != ChargeStatus.SUCCEEDED:
        raise SimError(
            409, "charge_not_refundable", f"charge {charge.reference} is {charge.status}"
        )
    if body.currency != charge.currency:
        raise SimError(
            422, "currency_mismatch", f"charge {charge.reference} is in {charge.currency}"
        )
    left = charge.amount - sim.store.refunded_total(charge.reference)
    if body.amount > left:
        raise SimError(
            409,
            "refund_exceeds_refundable",
            f"refund of {body.amount} exceeds the {left} left refundable on {charge.reference}",
        )


@router.post("/refunds", response_model=RefundOutcome)
async def create_refund(body: RefundBody, sim: Sim) -> RefundOutcome:
    existing = sim.store.refund_by_key(body.idempotency_key)
    if existing is None:
        # Check and insert with no await between: racing refunds on one charge are serialized.
        _check_refundable(sim, body)
        existing = RefundRow(
            reference=new_reference("re"),
            idempotency_key=body.idempotency_key,
            charge_reference=body.charge_reference,
            amount=body.amount,
            currency=body.currency,
            reason=body.reason,
            status="succeeded",
            created_at=time.time(),
        )
        sim.store.insert_refund(existing)
        log.info(
            "refund %s of %s key=%s",
            existing.reference,
            body.charge_reference,
            body.idempotency_key,
        )
    elif (existing.charge_reference, existing.amount, existing.currency) != (
        body.charge_reference,
        body.amount,
        body.currency,
    ):
        raise SimError(
            409, "idempotency_key_reused", f"idempotency key {body.idempotency_key} was used before"
        )
    return _refund_outcome(existing)
