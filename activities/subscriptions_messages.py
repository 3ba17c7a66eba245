"""A customer's tier-change turn, on the wire.

`SubscriptionActivities.request_turn` starts `SubscriptionWorkflow` with
`SubscriptionInput` and signals it a `TurnRequest`; the workflows use the same two.
"""

from __future__ import annotations

from datetime import timedelta

from billing.messages import Message


class TurnRequest(Message):
    """A tier change asking for (or giving back) its customer's turn."""

    customer_id: str
    workflow_id: str


class SubscriptionInput(Message):
    customer_id: str
    waiting: list[str] = []
    # With nobody waiting this long, the subscription closes; the next change reopens it.
    idle: timedelta = timedelta(seconds=10)
