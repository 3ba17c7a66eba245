"""Outbound events (service key): list, read with where each delivery stands, redeliver."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from api.auth import CallerDep, StateDep, require_service
from api.schemas import CONFLICT, ERRORS
from api.temporal import request_id, translated
from api.webhook_schemas import (
    DeliveryStateOut,
    EventDetail,
    EventOut,
    EventPage,
    RedeliverBody,
    Redelivery,
)
from billing.errors import Conflict, InvalidInput, NotFound
from billing.events import EventType
from billing.outbound import DeliveryInput, attempt_queue, attempt_timeout, redelivery_id
from store import outbox
from store import webhook_endpoints as endpoints
from store.outbox import EventRow
from workflows.webhook_delivery import WebhookDeliveryWorkflow

router = APIRouter(prefix="/v1/events", tags=["webhooks"], responses=ERRORS)


def event_out(row: EventRow) -> EventOut:
    return EventOut(
        id=row.id,
        type=row.type,
        created_at=row.created_at,
        customer_id=row.customer_id,
        sequence=row.sequence,
        data=row.data,
    )


@router.get("", response_model=EventPage)
async def list_events(
    caller: CallerDep,
    state: StateDep,
    type: Annotated[EventType | None, Query(description="Only this type")] = None,
    customer_id: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    after: Annotated[str | None, Query(max_length=64, description="The last id seen")] = None,
) -> EventPage:
    """Newest first."""
    require_service(caller)
    rows = await outbox.list_events(
        state.pool,
        type=None if type is None else type.value,
        customer_id=customer_id,
        after=after,
        limit=limit,
    )
    if rows is None:
        raise InvalidInput(f"after: no event {after!r}")
    next_after = rows[-1].id if len(rows) == limit else None
    return EventPage(events=[event_out(r) for r in rows], next_after=next_after)


@router.get("/{event_id}", response_model=EventDetail)
async def get_event(event_id: str, caller: CallerDep, state: StateDep) -> EventDetail:
    require_service(caller)
    row = await outbox.get_event(state.pool, event_id)
    if row is None:
        raise NotFound(f"no event {event_id!r}")
    states = await state.pool.fetch(endpoints.STATES_OF_EVENT, event_id)
    return EventDetail(
        **event_out(row).model_dump(), deliveries=[DeliveryStateOut(**dict(s)) for s in states]
    )


@router.post(
    "/{event_id}/redeliver",
    status_code=202,
    response_model=Redelivery,
    responses=CONFLICT,
)
async def redeliver(
    event_id: str,
    caller: CallerDep,
    state: StateDep,
    body: RedeliverBody | None = None,
    idempotency_key: Annotated[
        str | None, Header(max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    ] = None,
) -> Redelivery:
    """Send the event again (same `webhook-id`) to one endpoint or every one subscribed
    now, on the full retry schedule. The same `Idempotency-Key` starts nothing new."""
    require_service(caller)
    row = await outbox.get_event(state.pool, event_id)
    if row is None:
        raise NotFound(f"no event {event_id!r}")
    only = body.endpoint_id if body else None
    if only is not None:
        endpoint = await endpoints.get_endpoint(state.pool, only)
        if endpoint is None:
            raise NotFound(f"no webhook endpoint {only!r}")
        if not endpoint.enabled:
            raise Conflict(f"webhook endpoint {only} is disabled; enable it first")
    targets = [r["id"] for r in await state.pool.fetch(endpoints.SUBSCRIBED, row.type, only)]
    if not targets:
        raise Conflict(f"no enabled webhook endpoint takes {row.type} events")
    request = request_id(idempotency_key)
    settings = state.settings
    started: list[str] = []
    already = False
    for endpoint_id in targets:
        workflow_id = redelivery_id(event_id, endpoint_id, request)
        try:
            with translated(workflow_id):
                await state.temporal.start_workflow(
                    WebhookDeliveryWorkflow.run,
                    DeliveryInput(
                        event_id=event_id,
                        endpoint_id=endpoint_id,
                        event_type=row.type,
                        customer_id=row.customer_id,
                        schedule=settings.webhook_delays,
                        attempt_queue=attempt_queue(settings.task_queue),
                        attempt_timeout=attempt_timeout(settings.webhook_timeout_delta),
                    ),
                    id=workflow_id,
                    task_queue=settings.task_queue,
                    id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                    id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
                    static_summary=f"Redeliver {row.type} {event_id} to {endpoint_id}",
                )
        except WorkflowAlreadyStartedError:
            already = True
        started.append(workflow_id)
    return Redelivery(
        event_id=event_id, workflow_ids=started, status="already_started" if already else "started"
    )
