"""Look-ups: a charge or refund by its idempotency key, and every transaction since a time.

Always answered truthfully, even for keys whose calls lose their answers: this is how a
client resolves an unknown outcome, and what reconciliation reads. An empty `data` is a
definite "no such key".
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime
from typing import Annotated, Any, cast

from fastapi import APIRouter, Depends, Query

from billing.payments import DeclineKind, GatewayTransaction, TransactionStatus
from gateway_sim.charging import outcome_of, refund_outcome
from gateway_sim.state import SimError, SimState, get_sim
from gateway_sim.store import ChargeRow, RefundRow

router = APIRouter(prefix="/v1", tags=["look-ups"])
Sim = Annotated[SimState, Depends(get_sim)]
KeyParam = Annotated[str, Query(min_length=1, max_length=255)]


@router.get("/charges")
async def find_charges(sim: Sim, idempotency_key: KeyParam) -> dict[str, Any]:
    row = sim.store.charge_by_key(idempotency_key)
    data = [outcome_of(row).model_dump(mode="json")] if row else []
    return {"data": data, "has_more": False}


@router.get("/refunds")
async def find_refunds(sim: Sim, idempotency_key: KeyParam) -> dict[str, Any]:
    row = sim.store.refund_by_key(idempotency_key)
    data = [refund_outcome(row).model_dump(mode="json")] if row else []
    return {"data": data, "has_more": False}


def _at(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC)


def transaction_of(row: ChargeRow | RefundRow) -> GatewayTransaction:
    if isinstance(row, RefundRow):
        outcome = refund_outcome(row)
        return GatewayTransaction(
            kind="refund",
            gateway_reference=row.reference,
            idempotency_key=row.idempotency_key,
            status=outcome.status,
            amount=row.amount,
            currency=row.currency,
            created_at=_at(row.created_at),
            charge_reference=row.charge_reference,
            message=outcome.message,
        )
    return GatewayTransaction(
        kind="charge",
        gateway_reference=row.reference,
        idempotency_key=row.idempotency_key,
        # The table's CHECK keeps a charge's status to exactly these three values.
        status=cast(TransactionStatus, row.status),
        amount=row.amount,
        currency=row.currency,
        created_at=_at(row.created_at),
        metadata=row.metadata,
        method_type=row.method_type,
        authorization_code=row.authorization_code,
        decline_code=row.decline_code,
        decline_kind=DeclineKind(row.decline_kind) if row.decline_kind else None,
        message=row.message,
    )


def _encode_cursor(row: ChargeRow | RefundRow) -> str:
    # repr-exact float and the reference: the keyset the next page starts after.
    raw = json.dumps([row.created_at, row.reference]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[float, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created_at, reference = json.loads(raw)
        if isinstance(created_at, int | float) and isinstance(reference, str):
            return float(created_at), reference
    except (binascii.Error, ValueError, TypeError):
        pass
    raise SimError(422, "invalid_cursor", "cursor is not one this gateway gave out")


@router.get("/transactions")
async def list_transactions(
    sim: Sim,
    since: datetime,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    """Every charge and refund created at or after `since`, oldest first."""
    if since.tzinfo is None or since.utcoffset() is None:
        raise SimError(422, "invalid_request", "since: needs a time zone (e.g. Z or +00:00)")
    after = _decode_cursor(cursor) if cursor else None
    rows = sim.store.transactions_page(since.timestamp(), after, limit + 1)
    page = rows[:limit]
    return {
        "data": [transaction_of(row).model_dump(mode="json") for row in page],
        "next_cursor": _encode_cursor(page[-1]) if len(rows) > limit else None,
    }
