"""What the outbox activities (`OutboxActivities`) take and answer, on the wire.

`DeliveryInput` is also `WebhookDeliveryWorkflow`'s input: `dispatch_events` starts one
per (event, endpoint), and so does a redelivery from the API.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from billing.messages import Message


class DeliveryInput(Message):
    """Deliver one event to one endpoint: attempt, then wait `schedule[i]`, and so on."""

    event_id: str
    endpoint_id: str
    event_type: str
    customer_id: str | None = None
    schedule: list[timedelta]
    attempt_queue: str
    # How long one attempt may take before Temporal counts its worker as lost and retries.
    attempt_timeout: timedelta = timedelta(seconds=60)


class ExhaustedInput(Message):
    event_id: str
    endpoint_id: str
    workflow_id: str
    # When the first attempt was made: an endpoint that answered 2xx to anything since
    # then is flaky, not dead, and stays enabled.
    since: datetime


class EndpointDisabled(Message):
    disabled: bool
    event_id: str | None = None  # the webhook_endpoint.disabled event, when disabled now


class DispatchRound(Message):
    """Poll the outbox for `duration`, starting deliveries for each new event."""

    duration: timedelta = timedelta(seconds=60)
    poll_interval: timedelta = timedelta(milliseconds=500)
    batch: int = 100


class DispatchResult(Message):
    events: int
    deliveries: int
