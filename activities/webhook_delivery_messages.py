"""What one webhook delivery attempt (`WebhookDeliveryActivities`) takes and answers."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from billing.messages import Message


class AttemptInput(Message):
    event_id: str
    endpoint_id: str
    workflow_id: str
    attempt: int
    # The wait before the next attempt if this one fails; None: this is the last.
    next_delay: timedelta | None


AttemptResult = Literal["delivered", "failed", "endpoint_disabled", "endpoint_gone"]


class AttemptOutcome(Message):
    result: AttemptResult
    status_code: int | None = None
    latency_ms: int | None = None
    error: str | None = None
