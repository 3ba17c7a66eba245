"""WebhookDispatchWorkflow's input (its rounds are the outbox activities' `DispatchRound`)."""

from __future__ import annotations

from billing.messages import Message


class DispatchInput(Message):
    """The dispatcher's state across continue-as-new: only what it has done, for the UI."""

    dispatched: int = 0
