"""BillingCycleWorkflow: bill one customer for one period, then collect it.

Its id is `bill-{customer}-{period}` with REJECT_DUPLICATE, and the bill row is
unique per customer and period, so a period is billed once however often asked.

A bill paid at once is this one execution and two activities (issue 15): the cycle
makes the first attempt itself, as attempt 1 of the bill's charge saga, and starts
`ChargeWorkflow` only when collecting must wait (a decline and its dunning, a bank
transfer, an answer lost, no usable method), handing it what happened.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import FailureError

with workflow.unsafe.imports_passed_through():
    from activities.collect import CollectActivities
    from activities.ledger import LedgerActivities
    from activities.ledger_messages import BillRef, IssueCycleBillInput
    from billing.ledger import BillStatus
    from billing.payments import PaymentMethodType
    from billing.workflow_ids import charge_id
    from workflows.billing_cycle_messages import BillingCycleInput, BillingCycleResult
    from workflows.billing_run_messages import CycleWaiting
    from workflows.charge import ChargeWorkflow
    from workflows.charge_messages import ChargeInput, ChargeResult, Handoff
    from workflows.collecting import Collection
    from workflows.options import DB
    from workflows.search_attributes import BILL_ID, search_attributes
    from workflows.status import SagaWorkflow

# Issue 15, where the old code went another way (its first step): the cycle issues the
# bill with the policy in one activity and charges it itself. Cycles started before it
# replay the old way: issue, then a ChargeWorkflow child for every pending bill.
ONE_EXECUTION = "one-execution-per-bill-paid-at-once"
# The billing run's signal (by name: the run imports this module): this cycle now waits.
CYCLE_WAITING = "cycle_waiting"


@workflow.defn
class BillingCycleWorkflow(SagaWorkflow):
    @workflow.run
    async def run(self, inp: BillingCycleInput) -> BillingCycleResult:
        self._step("billing", f"aggregating {inp.customer_id}'s usage for {inp.period}")
        issue = IssueCycleBillInput(
            customer_id=inp.customer_id,
            period=inp.period,
            workflow_id=workflow.info().workflow_id,
        )
        result = BillingCycleResult(
            customer_id=inp.customer_id, period=inp.period, bill_id=None, outcome="nothing_to_bill"
        )
        if not workflow.patched(ONE_EXECUTION):
            return await self._bill_then_charge_saga(inp, issue, result)
        opened = await workflow.execute_activity_method(CollectActivities.open_cycle, issue, **DB)
        bill = self._issued(opened.bill, opened.reason)
        if bill is None:
            return result.model_copy(update=self._outcome(opened.bill))
        bill_id = bill.bill_id
        handoff = Handoff(policy=opened.policy)
        if opened.method != PaymentMethodType.BANK_TRANSFER:
            # A transfer always waits for its settlement: the saga that takes the webhook
            # makes it. Anything else is tried here, and most bills end here.
            collection = Collection(lambda step, details: self._step(step, details, bill_id))
            collection.start(bill_id, inp.customer_id, charge_id(bill_id))
            first = await collection.first_attempt(opened.policy)
            done = await collection.done_at_once(first)
            if done is not None:
                return result.model_copy(update={"bill_id": bill_id, "outcome": done.outcome})
            handoff = Handoff(
                policy=opened.policy,
                first=first.outcome,
                attempts=collection.attempts,
                bill=first.bill,
            )
        await self._give_back_the_runs_slot()
        charge = ChargeInput(bill_id=bill_id, customer_id=inp.customer_id, handoff=handoff)
        charged = await self._charge_saga(inp, bill, charge)
        return result.model_copy(update={"bill_id": bill_id, "outcome": charged.outcome})

    async def _bill_then_charge_saga(
        self, inp: BillingCycleInput, issue: IssueCycleBillInput, result: BillingCycleResult
    ) -> BillingCycleResult:
        """Cycles from before ONE_EXECUTION: a ChargeWorkflow child for every pending bill."""
        issued = await workflow.execute_activity_method(
            LedgerActivities.issue_cycle_bill, issue, **DB
        )
        bill = self._issued(issued.bill, issued.reason)
        if bill is None:
            return result.model_copy(update=self._outcome(issued.bill))
        charge = ChargeInput(bill_id=bill.bill_id, customer_id=inp.customer_id)
        charged = await self._charge_saga(inp, bill, charge)
        return result.model_copy(update={"bill_id": bill.bill_id, "outcome": charged.outcome})

    async def _give_back_the_runs_slot(self) -> None:
        """Started by a billing run, which bounds running cycles: collecting waits now (for
        days, in dunning), so this cycle stops counting against the run's concurrency."""
        parent = workflow.info().parent
        if parent is None:
            return
        run = workflow.get_external_workflow_handle(parent.workflow_id)
        try:
            await run.signal(CYCLE_WAITING, CycleWaiting(workflow_id=workflow.info().workflow_id))
        except FailureError:
            pass  # the run has ended (or was terminated): no slot is held for this cycle

    def _issued(self, bill: BillRef | None, reason: str) -> BillRef | None:
        """The bill when it is to be collected; else None, the step saying why not."""
        if bill is None:
            self._step("nothing_to_bill", reason)
            return None
        workflow.upsert_search_attributes([BILL_ID.value_set(bill.bill_id)])
        if bill.status != BillStatus.PENDING:
            self._step(bill.status, f"bill {bill.bill_id} is {bill.status}", bill.bill_id)
            return None
        self._step(
            "collecting",
            f"collecting {bill.total} {bill.currency} for {bill.bill_id}",
            bill.bill_id,
        )
        return bill

    @staticmethod
    def _outcome(bill: BillRef | None) -> dict[str, str | None]:
        if bill is None:
            return {}
        return {"bill_id": bill.bill_id, "outcome": bill.status}

    async def _charge_saga(
        self, inp: BillingCycleInput, bill: BillRef, charge: ChargeInput
    ) -> ChargeResult:
        """The bill's ChargeWorkflow, as a child, for as long as collecting takes."""
        saga = charge_id(bill.bill_id)
        self._step("collecting", f"{saga} collects {bill.bill_id}; waiting for it", bill.bill_id)
        charged = await workflow.execute_child_workflow(
            ChargeWorkflow.run,
            charge,
            id=saga,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=search_attributes(
                customer_id=inp.customer_id, tier=bill.tier, bill_id=bill.bill_id, period=inp.period
            ),
            static_summary=f"Collect {bill.bill_id}: {inp.customer_id}, {inp.period}",
        )
        self._step(charged.outcome, f"bill {bill.bill_id}: {charged.outcome}", bill.bill_id)
        return charged
