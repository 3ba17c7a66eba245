"""ReconciliationWorkflow's input and result, and the progress it carries across
continue-as-new."""

from __future__ import annotations

from datetime import datetime

from activities.reconciliation_messages import Fixed
from billing.messages import Message
from billing.reconciliation import Unresolved


class ReconciliationProgress(Message):
    """Carried across continue-as-new: where the listing stands and what was found so far."""

    cursor: str | None = None
    checked: int = 0
    matched: int = 0
    fixed: list[Fixed] = []
    unresolved: list[Unresolved] = []


class ReconciliationInput(Message):
    """`since` None: the last two days. `request_id` None: a scheduled run (one is drawn)."""

    since: datetime | None = None
    request_id: str | None = None
    progress: ReconciliationProgress | None = None


class ReconciliationResult(Message):
    id: str
    workflow_id: str
    since: datetime
    checked: int
    matched: int
    fixed: list[Fixed]
    unresolved: list[Unresolved]
