"""The answer of every workflow's `status` query, read by `GET /v1/workflows/{id}`."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from billing.messages import Message


class SagaStatus(Message):
    """What `GET /v1/workflows/{id}` shows: the step and what it means in words."""

    step: str
    details: str = ""
    bill_id: str | None = None
    amount: Decimal | None = None
    currency: str | None = None
    at: datetime | None = None
