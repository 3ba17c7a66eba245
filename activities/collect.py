"""The billing cycle's own steps, one round trip each: open the cycle; charge and record.

A bill paid at once is one workflow execution with these two activities (issue 15).
They compose the existing steps rather than restate them: `open_cycle` is
`issue_cycle_bill` plus the charge policy and the customer's payment method type;
`charge_and_record` is `GatewayActivities.charge` (its claim, its key, its lost answers)
followed by `LedgerActivities.record_attempt`, so an outcome the saga records is in the
ledger before the workflow moves on. A retry after the record asks the gateway again
under the same key, gets the same answer, and records nothing twice (both are keyed).
"""

from __future__ import annotations

from temporalio import activity

from activities.collect_messages import ChargeAndRecordInput, ChargeRecorded, CycleOpened
from activities.ledger_messages import IssueCycleBillInput, RecordAttemptInput
from billing.ledger import BillStatus
from billing.payments import ChargeStatus, PaymentMethodType
from config.settings import Settings
from store import tiers as tiers_sql

from .config import charge_policy_of
from .gateway import GatewayActivities
from .ledger import LedgerActivities

# The outcomes a saga records: those of a gateway call that answered. Not `no_method` and
# `not_due` (no call), `in_flight` (another attempt's), `unknown` (no answer yet).
RECORDED = frozenset(ChargeStatus)


class CollectActivities:
    def __init__(
        self, ledger: LedgerActivities, payments: GatewayActivities, settings: Settings
    ) -> None:
        self.ledger = ledger
        self.payments = payments
        self.settings = settings

    @activity.defn
    async def open_cycle(self, req: IssueCycleBillInput) -> CycleOpened:
        """Issue the period's bill once; with it the policy, and the method type that says
        whether collecting waits (a bank transfer) before any attempt is made."""
        issued = await self.ledger.issue_cycle_bill(req)
        method = None
        if issued.bill is not None and issued.bill.status == BillStatus.PENDING:
            row = await self.ledger.pool.fetchrow(
                tiers_sql.DEFAULT_PAYMENT_METHOD, req.customer_id, []
            )
            method = None if row is None else PaymentMethodType(row["type"])
        return CycleOpened(
            bill=issued.bill,
            reason=issued.reason,
            policy=charge_policy_of(self.settings),
            method=method,
        )

    @activity.defn
    async def charge_and_record(self, req: ChargeAndRecordInput) -> ChargeRecorded:
        """One attempt; an outcome the saga records is recorded before this answers."""
        outcome = await self.payments.charge(req.charge)
        if outcome.status not in RECORDED:
            return ChargeRecorded(outcome=outcome)
        bill = await self.ledger.record_attempt(
            RecordAttemptInput(
                bill_id=req.charge.bill_id, outcome=outcome, next_try_at=req.next_try_at
            )
        )
        return ChargeRecorded(outcome=outcome, bill=bill)
