"""What the reconciliation activities (`ReconciliationActivities`) take and answer, on the wire.

The verdicts they carry (`RefundToRecord`, `Unresolved`, a page's `PagePlan`) are the
domain's, from `billing.reconciliation.plan_page`; `Fixed` is a line of the report, also
in `ReconciliationWorkflow`'s progress and result.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Literal

from billing.messages import Message
from billing.payments import GatewayTransaction
from billing.reconciliation import RefundToRecord, Unresolved


class Fixed(Message):
    """What reconciliation recorded; `excess_refunded` is a capture's overpayment sent back."""

    kind: Literal["capture", "refund"]
    gateway_reference: str
    bill_id: str
    amount: Decimal
    currency: str
    charge_reference: str | None = None
    excess_refunded: Decimal | None = None
    outcome: Literal["recorded", "recording"] = "recorded"


class ListTransactionsInput(Message):
    since: datetime
    cursor: str | None = None
    limit: int = 100


class PlanPageInput(Message):
    transactions: list[GatewayTransaction]


class RecordRefundsInput(Message):
    refunds: list[RefundToRecord]
    workflow_id: str


class RefundsRecorded(Message):
    """`matched`: already in the ledger by the time they were recorded (a saga got there)."""

    fixed: list[Fixed] = []
    matched: int = 0
    unresolved: list[Unresolved] = []


class ReportSave(Message):
    """The whole report as it stands: saving it again with the same figures changes nothing."""

    id: str
    workflow_id: str
    since: datetime
    status: Literal["running", "completed"]
    checked: int = 0
    matched: int = 0
    fixed: list[Fixed] = []
    unresolved: list[Unresolved] = []
