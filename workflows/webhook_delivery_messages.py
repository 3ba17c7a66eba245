"""WebhookDeliveryWorkflow's result (its input is the outbox activities' `DeliveryInput`,
which `dispatch_events` starts it with)."""

from __future__ import annotations

from typing import Literal

from billing.messages import Message


class DeliveryResult(Message):
    result: Literal["delivered", "exhausted", "endpoint_disabled", "endpoint_gone"]
    attempts: int
    endpoint_disabled_now: bool = False
