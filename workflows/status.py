"""Every workflow's `status` query: its answer, and the base class that keeps it.

`GET /v1/workflows/{id}` reads it through `SagaWorkflow.status`, whatever the workflow.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import ClassVar

from temporalio import workflow

from billing.messages import Message


class SagaStatus(Message):
    """What `GET /v1/workflows/{id}` shows: the step and what it means in words."""

    step: str
    details: str = ""
    bill_id: str | None = None
    amount: Decimal | None = None
    currency: str | None = None
    at: datetime | None = None


class SagaWorkflow:
    """A workflow whose `status` query answers its latest step; `_step` sets it and the
    Web UI's current details together. Neither is a command: replay is unaffected."""

    # True: each step carries `workflow.now()` (a delivery says when it last moved).
    _timestamped: ClassVar[bool] = False

    def __init__(self) -> None:
        self._status = SagaStatus(step="starting")

    @workflow.query
    def status(self) -> SagaStatus:
        return self._status

    def _step(self, step: str, details: str, bill_id: str | None = None) -> None:
        at = workflow.now() if self._timestamped else None
        self._status = SagaStatus(step=step, details=details, bill_id=bill_id, at=at)
        workflow.set_current_details(details)
