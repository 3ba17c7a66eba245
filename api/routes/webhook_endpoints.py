"""The seller's webhook endpoints (service key): register, read, change, rotate, delete.

The signing secret is in the create and rotate answers only. URLs are checked here
(http/https, no credentials, no private address outside dev) and again, resolved, at
every delivery attempt.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from api.auth import CallerDep, StateDep, require_service
from api.schemas import CURSOR_DESCRIPTION, ERRORS, PathId, text_query
from api.webhook_schemas import (
    DeliveryAttemptOut,
    DeliveryPage,
    EndpointCreate,
    EndpointCreated,
    EndpointOut,
    EndpointPage,
    EndpointUpdate,
    RotateSecret,
    SecretRotated,
)
from billing.durations import parse_duration
from billing.errors import InvalidInput, NotFound
from billing.events import new_secret
from billing.outbound import check_url
from store import webhook_endpoints as store
from store.webhook_endpoints import EndpointRow

router = APIRouter(prefix="/v1/webhook-endpoints", tags=["webhooks"], responses=ERRORS)


def endpoint_out(row: EndpointRow) -> EndpointOut:
    return EndpointOut(
        id=row.id,
        url=row.url,
        description=row.description,
        events=row.events,
        enabled=row.enabled,
        disabled_reason=row.disabled_reason,
        previous_secret_expires_at=row.previous_secret_expires_at if row.previous_secret else None,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _found(row: EndpointRow | None, endpoint_id: str) -> EndpointRow:
    if row is None:
        raise NotFound(f"no webhook endpoint {endpoint_id!r}")
    return row


@router.post("", status_code=201, response_model=EndpointCreated)
async def create_endpoint(
    body: EndpointCreate, caller: CallerDep, state: StateDep
) -> EndpointCreated:
    """Events of the listed types (all, if none) go to `url`, signed with the secret
    answered here, once."""
    require_service(caller)
    url = check_url(body.url, allow_private=state.settings.webhooks_reach_private)
    secret = new_secret()
    row = await store.create_endpoint(
        state.pool,
        url=url,
        description=body.description,
        events=[e.value for e in body.events],
        secret=secret,
    )
    return EndpointCreated(**endpoint_out(row).model_dump(), secret=secret)


@router.get("", response_model=EndpointPage)
async def list_endpoints(
    caller: CallerDep,
    state: StateDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    after: Annotated[str | None, text_query(64, "The last id seen")] = None,
) -> EndpointPage:
    require_service(caller)
    rows = await store.list_endpoints(state.pool, after=after, limit=limit)
    next_after = rows[-1].id if len(rows) == limit else None
    return EndpointPage(endpoints=[endpoint_out(r) for r in rows], next_after=next_after)


@router.get("/{endpoint_id}", response_model=EndpointOut)
async def get_endpoint(endpoint_id: PathId, caller: CallerDep, state: StateDep) -> EndpointOut:
    require_service(caller)
    return endpoint_out(_found(await store.get_endpoint(state.pool, endpoint_id), endpoint_id))


@router.patch("/{endpoint_id}", response_model=EndpointOut)
async def update_endpoint(
    endpoint_id: PathId, body: EndpointUpdate, caller: CallerDep, state: StateDep
) -> EndpointOut:
    """Enable or disable, change the types, the URL or the description. Enabling does not
    resend what was missed meanwhile: POST /v1/events/{id}/redeliver does."""
    require_service(caller)
    if not body.model_fields_set:
        raise InvalidInput("nothing to change: send enabled, events, url or description")
    url = None
    if body.url is not None:
        url = check_url(body.url, allow_private=state.settings.webhooks_reach_private)
    row = await store.update_endpoint(
        state.pool,
        endpoint_id,
        url=url,
        description=body.description,
        events=None if body.events is None else [e.value for e in body.events],
        enabled=body.enabled,
    )
    return endpoint_out(_found(row, endpoint_id))


@router.delete("/{endpoint_id}", status_code=204)
async def delete_endpoint(endpoint_id: PathId, caller: CallerDep, state: StateDep) -> Response:
    """Gone with its delivery log; deliveries still waiting end at their next attempt."""
    require_service(caller)
    if not await store.delete_endpoint(state.pool, endpoint_id):
        raise NotFound(f"no webhook endpoint {endpoint_id!r}")
    return Response(status_code=204)


@router.post("/{endpoint_id}/rotate-secret", response_model=SecretRotated)
async def rotate_secret(
    endpoint_id: PathId, caller: CallerDep, state: StateDep, body: RotateSecret | None = None
) -> SecretRotated:
    """A new secret signs from now on; the previous one signs too for `overlap`, so a
    receiver can switch without dropping a delivery (both signatures are sent)."""
    require_service(caller)
    overlap = parse_duration((body or RotateSecret()).overlap)
    secret = new_secret()
    row = _found(
        await store.rotate_secret(state.pool, endpoint_id, secret=secret, overlap=overlap),
        endpoint_id,
    )
    return SecretRotated(
        id=row.id, secret=secret, previous_secret_expires_at=row.previous_secret_expires_at
    )


@router.get("/{endpoint_id}/deliveries", response_model=DeliveryPage)
async def list_deliveries(
    endpoint_id: PathId,
    caller: CallerDep,
    state: StateDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    after: Annotated[str | None, text_query(64, CURSOR_DESCRIPTION, minLength=1)] = None,
    event_id: Annotated[str | None, text_query(64)] = None,
) -> DeliveryPage:
    """Every attempt, newest first: status code, latency, error and when the next is due."""
    require_service(caller)
    _found(await store.get_endpoint(state.pool, endpoint_id), endpoint_id)
    cursor = (None, None)
    if after is not None:
        found = await state.pool.fetchrow(store.DELIVERY_CURSOR, after)
        if found is None:
            raise InvalidInput(f"after: no delivery {after!r}")
        cursor = (found["created_at"], found["id"])
    rows = await state.pool.fetch(store.LIST_DELIVERIES, endpoint_id, event_id, *cursor, limit)
    deliveries = [DeliveryAttemptOut(**dict(r)) for r in rows]
    next_after = deliveries[-1].id if len(deliveries) == limit else None
    return DeliveryPage(deliveries=deliveries, next_after=next_after)
