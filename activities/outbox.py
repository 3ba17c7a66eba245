"""The outbox's side of delivery: start a delivery per (event, endpoint), disable dead endpoints.

`dispatch_events` claims committed events that have not been dispatched, starts one
WebhookDeliveryWorkflow per subscribed endpoint, and marks them dispatched, all in one
transaction: a dispatcher killed half way leaves them undispatched, and the next round
starts them again (a delivery already started is found by its id and left alone).
"""

from __future__ import annotations

import asyncio
import time

import asyncpg
from temporalio import activity
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from billing.events import EventType
from billing.outbound import (
    DeliveryInput,
    DispatchResult,
    DispatchRound,
    EndpointDisabled,
    ExhaustedInput,
    attempt_queue,
    attempt_timeout,
    delivery_id,
)
from config.settings import Settings
from store import webhook_deliveries as sql
from store.outbox import emit

# Starts in flight at once while dispatching one batch.
_STARTS_IN_FLIGHT = 20


class OutboxActivities:
    def __init__(
        self, pool: asyncpg.Pool, client: Client, task_queue: str, settings: Settings
    ) -> None:
        self.pool = pool
        self.client = client
        self.task_queue = task_queue
        self.settings = settings

    async def _start(self, delivery: DeliveryInput, gate: asyncio.Semaphore) -> None:
        async with gate:
            try:
                await self.client.start_workflow(
                    "WebhookDeliveryWorkflow",
                    delivery,
                    id=delivery_id(delivery.event_id, delivery.endpoint_id),
                    task_queue=self.task_queue,
                    # The id is the event and the endpoint: a second start is a duplicate.
                    # (The workflow sets its own search attributes: none are needed here.)
                    id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                    id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
                    static_summary=(
                        f"Deliver {delivery.event_type} {delivery.event_id} "
                        f"to {delivery.endpoint_id}"
                    ),
                )
            except WorkflowAlreadyStartedError:
                pass  # started by a round that died before it committed

    async def dispatch_once(self, batch: int) -> DispatchResult:
        """One batch of the outbox, in one transaction; how many events and deliveries."""
        async with self.pool.acquire() as conn, conn.transaction():
            claimed = await conn.fetch(sql.CLAIM_EVENTS, batch)
            if not claimed:
                return DispatchResult(events=0, deliveries=0)
            ids = [r["id"] for r in claimed]
            targets = await conn.fetch(sql.TARGETS, ids)
            deliveries = [
                DeliveryInput(
                    event_id=t["event_id"],
                    endpoint_id=t["endpoint_id"],
                    event_type=t["type"],
                    customer_id=t["customer_id"],
                    schedule=self.settings.webhook_delays,
                    attempt_queue=attempt_queue(self.task_queue),
                    attempt_timeout=attempt_timeout(self.settings.webhook_timeout_delta),
                )
                for t in targets
            ]
            if deliveries:
                await conn.execute(
                    sql.INSERT_STATES,
                    [d.event_id for d in deliveries],
                    [d.endpoint_id for d in deliveries],
                    [delivery_id(d.event_id, d.endpoint_id) for d in deliveries],
                )
                gate = asyncio.Semaphore(_STARTS_IN_FLIGHT)
                await asyncio.gather(*(self._start(d, gate) for d in deliveries))
            await conn.execute(sql.MARK_DISPATCHED, ids)
        return DispatchResult(events=len(ids), deliveries=len(deliveries))

    @activity.defn
    async def dispatch_events(self, req: DispatchRound) -> DispatchResult:
        """Poll the outbox for `req.duration`, heartbeating; what was dispatched."""
        deadline = time.monotonic() + req.duration.total_seconds()
        events = deliveries = 0
        while True:
            activity.heartbeat(events)
            done = await self.dispatch_once(req.batch)
            events += done.events
            deliveries += done.deliveries
            if done.events == req.batch:
                continue  # more are waiting
            if time.monotonic() >= deadline:
                return DispatchResult(events=events, deliveries=deliveries)
            await asyncio.sleep(req.poll_interval.total_seconds())

    @activity.defn
    async def endpoint_exhausted(self, req: ExhaustedInput) -> EndpointDisabled:
        """The schedule is spent: the delivery failed; a dead endpoint is disabled, once,
        with a webhook_endpoint.disabled event in the same transaction."""
        reason = f"every attempt to deliver {req.event_id} failed for the whole retry schedule"
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(sql.SET_STATE, req.event_id, req.endpoint_id, "failed")
            row = await conn.fetchrow(sql.DISABLE_IF_DEAD, req.endpoint_id, req.since, reason)
            if row is None:
                return EndpointDisabled(disabled=False)
            await conn.execute(sql.CANCEL_PENDING, req.endpoint_id)
            event_id = await emit(
                conn,
                type=EventType.WEBHOOK_ENDPOINT_DISABLED,
                customer_id=None,
                data={
                    "id": row["id"],
                    "url": row["url"],
                    "description": row["description"],
                    "events": list(row["events"]),
                    "enabled": False,
                    "disabled_reason": row["disabled_reason"],
                    "disabled_at": row["updated_at"],
                },
            )
        activity.logger.warning("webhook endpoint %s disabled: %s", req.endpoint_id, reason)
        return EndpointDisabled(disabled=True, event_id=event_id)
