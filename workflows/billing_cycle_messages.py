"""BillingCycleWorkflow's input and result."""

from __future__ import annotations

from billing.messages import Message


class BillingCycleInput(Message):
    customer_id: str
    period: str


class BillingCycleResult(Message):
    customer_id: str
    period: str
    bill_id: str | None
    outcome: str
