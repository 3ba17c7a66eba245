"""Usage events in, one or a batch: a thin adapter over the ingest service (api/ingest).

The routes take the raw request (msgspec decodes it, api/ingest/decode.py) and answer
pre-encoded JSON; the OpenAPI still describes each body and answer by its pydantic model.
"""

from __future__ import annotations

from typing import Any

import msgspec
from fastapi import APIRouter, Request, Response

from api.errors import rate_limit_headers
from api.ingest.decode import decode_batch, decode_event, openapi_body
from api.ingest.service import IngestService, Recording
from api.schemas import (
    ERRORS,
    UsageBatch,
    UsageBatchResult,
    UsageEventBody,
    UsageRecorded,
)
from billing.error_body import ErrorBody
from billing.errors import PeriodAlreadyBilled, RateLimited
from billing.metering import limited_message
from store.limiter import Reservation

router = APIRouter(tags=["usage"], responses=ERRORS)

_BEARER: dict[str, Any] = {"security": [{"HTTPBearer": []}]}
_RECORDED = b'{"recorded":true,"duplicate":false}'
_DUPLICATE = b'{"recorded":false,"duplicate":true}'


def ingest_service(request: Request) -> IngestService:
    """One per app, built on first use from what the lifespan connected."""
    state = request.app.state
    service: IngestService | None = getattr(state, "ingest", None)
    if service is None:
        service = state.ingest = IngestService(state.billing, state.limiter)
    return service


def _limit_headers(reservation: Reservation | None) -> dict[str, str] | None:
    if reservation is None:
        return None
    return rate_limit_headers(reservation.limit, reservation.remaining, reservation.reset_at)


def _limited(service: IngestService, out: Recording, customer_id: str) -> str:
    held = out.reservations[customer_id]
    return limited_message(
        service.catalog,
        out.cols.plans[customer_id].plan,
        limit=held.limit,
        count=held.count,
        quantity=held.quantity,
    )


@router.post(
    "/v1/usage",
    status_code=201,
    response_model=UsageRecorded,
    responses={
        200: {"model": UsageRecorded, "description": "A duplicate event_id: recorded before"},
        409: {"model": ErrorBody, "description": "A new event in an already billed period"},
        422: {"model": ErrorBody, "description": "Malformed, or before the customer's started_at"},
        429: {"model": ErrorBody, "description": "Over the hourly API-call limit"},
        503: {"model": ErrorBody, "description": "Redis down and RATE_LIMIT_REDIS_DOWN=deny"},
    },
    openapi_extra={**openapi_body(UsageEventBody), **_BEARER},
)
async def record_usage(request: Request) -> Response:
    """201 recorded, 200 duplicate, 409 new usage in a billed period, 429 over the hourly limit."""
    service = ingest_service(request)
    caller = await service.caller(request.headers.get("authorization"))
    event = decode_event(await request.body(), request.headers.get("content-type"))
    out = await service.record_one(caller, event)
    status = out.status()
    held = out.reservations.get(event.customer_id)
    if status == "rate_limited":
        assert held is not None
        message = _limited(service, out, event.customer_id)
        raise RateLimited(
            message, limit=held.limit, remaining=held.remaining, reset_at=held.reset_at
        )
    if status == "billed":
        raise PeriodAlreadyBilled(
            f"period {out.cols.period_of_row(0)} is already billed for {event.customer_id}; "
            "usage that occurred in it can no longer be recorded"
        )
    inserted = status == "inserted"
    return Response(
        _RECORDED if inserted else _DUPLICATE,
        status_code=201 if inserted else 200,
        headers=_limit_headers(held),
        media_type="application/json",
    )


@router.post(
    "/v1/usage/batch",
    response_model=UsageBatchResult,
    openapi_extra={**openapi_body(UsageBatch), **_BEARER},
)
async def record_usage_batch(request: Request) -> Response:
    """Malformed events refuse the whole batch (422); per-event refusals land in `rejected`."""
    service = ingest_service(request)
    caller = await service.caller(request.headers.get("authorization"))
    events = decode_batch(await request.body(), request.headers.get("content-type"))
    out = await service.record_batch(caller, events)
    rejected: list[dict[str, Any]] = [
        {"event_id": e.event_id, "customer_id": e.customer_id, "error": exc.code,
         "message": exc.message}
        for e, exc in out.refused
    ]  # fmt: skip
    cols = out.cols
    for row, status in sorted(cols.status.items()):
        if status == "billed":
            code, message = (
                PeriodAlreadyBilled.code,
                f"period {cols.period_of_row(row)} is already billed",
            )
        elif status == "rate_limited":
            code, message = RateLimited.code, _limited(service, out, cols.events[row].customer_id)
        else:
            continue
        event = cols.events[row]
        rejected.append(
            {"event_id": event.event_id, "customer_id": event.customer_id, "error": code,
             "message": message}
        )  # fmt: skip
    body = {"accepted": out.inserted, "duplicates": out.duplicates, "rejected": rejected}
    only = events[0].customer_id
    single_customer = all(e.customer_id == only for e in events)
    headers = _limit_headers(out.reservations.get(only)) if single_customer else None
    return Response(msgspec.json.encode(body), headers=headers, media_type="application/json")
