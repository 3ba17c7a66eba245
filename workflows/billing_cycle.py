"""BillingCycleWorkflow: bill one customer for one period, then collect it.

Its id is `bill-{customer}-{period}` with REJECT_DUPLICATE, and the bill row is
unique per customer and period, so a period is billed once however often asked.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.common import WorkflowIDReusePolicy

with workflow.unsafe.imports_passed_through():
    from activities.ledger import LedgerActivities
    from activities.ledger_messages import IssueCycleBillInput
    from billing.ledger import BillStatus
    from billing.workflow_ids import charge_id
    from workflows.billing_cycle_messages import BillingCycleInput, BillingCycleResult
    from workflows.charge import ChargeWorkflow
    from workflows.charge_messages import ChargeInput
    from workflows.options import DB
    from workflows.search_attributes import BILL_ID, search_attributes
    from workflows.status import SagaWorkflow


@workflow.defn
class BillingCycleWorkflow(SagaWorkflow):
    @workflow.run
    async def run(self, inp: BillingCycleInput) -> BillingCycleResult:
        self._step("billing", f"aggregating {inp.customer_id}'s usage for {inp.period}")
        issued = await workflow.execute_activity_method(
            LedgerActivities.issue_cycle_bill,
            IssueCycleBillInput(
                customer_id=inp.customer_id,
                period=inp.period,
                workflow_id=workflow.info().workflow_id,
            ),
            **DB,
        )
        result = BillingCycleResult(
            customer_id=inp.customer_id, period=inp.period, bill_id=None, outcome="nothing_to_bill"
        )
        bill = issued.bill
        if bill is None:
            self._step("nothing_to_bill", issued.reason)
            return result
        workflow.upsert_search_attributes([BILL_ID.value_set(bill.bill_id)])
        result = result.model_copy(update={"bill_id": bill.bill_id, "outcome": bill.status})
        if bill.status != BillStatus.PENDING:
            self._step(bill.status, f"bill {bill.bill_id} is {bill.status}", bill.bill_id)
            return result
        self._step(
            "collecting",
            f"collecting {bill.total} {bill.currency} for {bill.bill_id}",
            bill.bill_id,
        )
        charged = await workflow.execute_child_workflow(
            ChargeWorkflow.run,
            ChargeInput(bill_id=bill.bill_id, customer_id=inp.customer_id),
            id=charge_id(bill.bill_id),
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=search_attributes(
                customer_id=inp.customer_id, tier=bill.tier, bill_id=bill.bill_id, period=inp.period
            ),
            static_summary=f"Collect {bill.bill_id}: {inp.customer_id}, {inp.period}",
        )
        self._step(charged.outcome, f"bill {bill.bill_id}: {charged.outcome}", bill.bill_id)
        return result.model_copy(update={"outcome": charged.outcome})
