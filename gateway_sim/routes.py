"""The gateway's public API: charges and refunds, each idempotent by its key.

A key seen before answers the first stored result and never captures twice; the same key
with a different amount or currency is a 409. Tokens are used to decide and then dropped:
never stored, never logged. A charge made with `tok_lost_answer` takes effect, and so do
refunds of it, but no call under their keys is ever answered (look-ups are: lookups.py).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from billing.payments import (
    ChargeOutcome,
    ChargeStatus,
    PaymentMethodType,
    RefundOutcome,
    looks_like_card_number,
)
from gateway_sim.charging import NewCharge, outcome_of, refund_outcome, store_charge
from gateway_sim.decide import TOKEN_GATEWAY_TIMEOUT, new_reference
from gateway_sim.state import SimError, SimState, envelope, get_sim, lose_answer
from gateway_sim.store import ChargeRow, RefundRow, stamp

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


def _replay(row: ChargeRow, body: ChargeBody) -> ChargeOutcome:
    if row.amount != body.amount or row.currency != body.currency:
        raise SimError(
            409,
            "idempotency_key_reused",
            f"idempotency key {body.idempotency_key} was used for {row.amount} {row.currency}",
        )
    log.info("charge %s key=%s replayed: %s", row.reference, row.idempotency_key, row.status)
    return outcome_of(row)


async def _answer_stored(
    row: ChargeRow, body: ChargeBody, request: Request
) -> ChargeOutcome | JSONResponse:
    outcome = _replay(row, body)
    if row.answers_lost:
        return await lose_answer(request, f"charge {row.reference} key={row.idempotency_key}")
    return outcome


def _new_charge(body: ChargeBody) -> NewCharge:
    return NewCharge(
        idempotency_key=body.idempotency_key,
        amount=body.amount,
        currency=body.currency,
        method_type=body.method_type,
        token=body.token,
        description=body.description,
        metadata=body.metadata,
    )


@router.post("/charges", response_model=ChargeOutcome)
async def create_charge(
    body: ChargeBody, sim: Sim, request: Request
) -> ChargeOutcome | JSONResponse:
    existing = sim.store.charge_by_key(body.idempotency_key)
    if existing is not None:
        return await _answer_stored(existing, body, request)
    if looks_like_card_number(body.token):
        raise SimError(422, "card_number_refused", "send a payment token, not a card number")
    if body.token == TOKEN_GATEWAY_TIMEOUT:
        log.info("charge key=%s: simulated gateway timeout, nothing stored", body.idempotency_key)
        return envelope(504, "gateway_timeout", "the gateway did not answer in time; retry")
    try:
        row = store_charge(sim, _new_charge(body))
    except sqlite3.IntegrityError:
        # Another process stored this key between our read and write: answer its result.
        stored = sim.store.charge_by_key(body.idempotency_key)
        if stored is None:
            raise
        return await _answer_stored(stored, body, request)
    log.info("charge %s key=%s: %s", row.reference, row.idempotency_key, row.status)
    if row.answers_lost:
        return await lose_answer(request, f"charge {row.reference} key={row.idempotency_key}")
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
async def create_refund(
    body: RefundBody, sim: Sim, request: Request
) -> RefundOutcome | JSONResponse:
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
            created_at=stamp(),
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
    charge = sim.store.charge(existing.charge_reference)
    if charge is not None and charge.answers_lost:
        return await lose_answer(request, f"refund {existing.reference} key={body.idempotency_key}")
    return refund_outcome(existing)
