"""BillingRunWorkflow's input (also its continue-as-new cursor) and result."""

from __future__ import annotations

from billing.messages import Message


class BillingRunInput(Message):
    """`period` None means the month before the run's start (for the monthly Schedule)."""

    period: str | None = None
    after: str | None = None
    started: int = 0
    skipped: int = 0


class BillingRunResult(Message):
    period: str
    started: int
    skipped: int


class CycleWaiting(Message):
    """A cycle tells the billing run that started it that its bill now waits in a charge
    saga (dunning, a transfer, a lost answer looked up): it gives back its slot."""

    workflow_id: str
