"""UpgradeWorkflow: change the tier, issue a prorated bill, charge it; compensate on failure.

Compensations are registered before their step and are safe whether or not it
happened: revert the tier (by key), void the bill the step's key names. A
downgrade changes the tier and issues no bill (no credit for the rest of the month).
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.customers import CustomerActivities
    from activities.ledger import LedgerActivities
    from billing.messages import (
        ChangeTierInput,
        ChargeInput,
        CustomerKey,
        IssueUpgradeBillInput,
        SagaNote,
        SagaStatus,
        UpgradeInput,
        UpgradeResult,
        VoidBillInput,
    )
    from billing.workflow_ids import charge_id
    from workflows.charge import ChargeWorkflow
    from workflows.options import DB
    from workflows.saga import Saga
    from workflows.search_attributes import BILL_ID, TIER, search_attributes

_ORDER = ["free", "starter", "professional", "enterprise"]


@workflow.defn
class UpgradeWorkflow:
    def __init__(self) -> None:
        self._status = SagaStatus(step="starting")

    @workflow.query
    def status(self) -> SagaStatus:
        return self._status

    def _step(self, step: str, details: str, bill_id: str | None = None) -> None:
        self._status = SagaStatus(step=step, details=details, bill_id=bill_id)
        workflow.set_current_details(details)

    def _tier_change(self, inp: UpgradeInput, to_tier: str, step: str) -> ChangeTierInput:
        wf = workflow.info().workflow_id
        return ChangeTierInput(
            customer_id=inp.customer_id,
            to_tier=to_tier,
            reason=f"{inp.reason}: {step}",
            workflow_id=wf,
            idempotency_key=f"{wf}-{step}",
            at=workflow.now(),
            # A failed automatic conversion is not retried on every later request.
            disable_auto_upgrade=step == "revert" and inp.reason == "auto_conversion",
        )

    @workflow.run
    async def run(self, inp: UpgradeInput) -> UpgradeResult:
        wf = workflow.info().workflow_id
        customer = await workflow.execute_activity_method(
            CustomerActivities.get_customer, CustomerKey(customer_id=inp.customer_id), **DB
        )
        current, target = customer.tier, inp.target_tier
        result = UpgradeResult(
            customer_id=inp.customer_id, outcome="unchanged", from_tier=current, to_tier=current
        )
        if current == target:
            self._step("unchanged", f"{inp.customer_id} is already on {target}")
            return result
        if _ORDER.index(target) < _ORDER.index(current):
            await workflow.execute_activity_method(
                CustomerActivities.change_tier, self._tier_change(inp, target, "downgrade"), **DB
            )
            workflow.upsert_search_attributes([TIER.value_set(target)])
            self._step("downgraded", f"{inp.customer_id} moved from {current} down to {target}")
            return result.model_copy(update={"outcome": "downgraded", "to_tier": target})

        saga = Saga()
        bill_key = f"{wf}-bill"
        try:
            saga.add("revert tier", lambda: self._revert(inp, current))
            self._step("changing_tier", f"moving {inp.customer_id} from {current} to {target}")
            await workflow.execute_activity_method(
                CustomerActivities.change_tier, self._tier_change(inp, target, "change"), **DB
            )
            workflow.upsert_search_attributes([TIER.value_set(target)])

            saga.add("void bill", lambda: self._void(bill_key, "upgrade charge failed"))
            bill = await workflow.execute_activity_method(
                LedgerActivities.issue_upgrade_bill,
                IssueUpgradeBillInput(
                    customer_id=inp.customer_id,
                    from_tier=current,
                    to_tier=target,
                    at=workflow.now(),
                    workflow_id=wf,
                    idempotency_key=bill_key,
                ),
                **DB,
            )
            workflow.upsert_search_attributes([BILL_ID.value_set(bill.bill_id)])
            self._step(
                "charging",
                f"charging the prorated {bill.total} {bill.currency} on {bill.bill_id}",
                bill.bill_id,
            )
            if bill.status != "paid":
                charged = await workflow.execute_child_workflow(
                    ChargeWorkflow.run,
                    ChargeInput(bill_id=bill.bill_id, customer_id=inp.customer_id, dunning=False),
                    id=charge_id(bill.bill_id),
                    id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                    search_attributes=search_attributes(
                        customer_id=inp.customer_id, tier=target, bill_id=bill.bill_id
                    ),
                    static_summary=f"Charge the upgrade bill {bill.bill_id} of {inp.customer_id}",
                )
                if charged.outcome not in ("paid", "not_due"):
                    raise ApplicationError(
                        f"the upgrade charge of {bill.bill_id} failed after "
                        f"{charged.attempts} attempt(s)",
                        type="UpgradeChargeFailed",
                        non_retryable=True,
                    )
        except Exception as err:
            done = await saga.compensate()
            message = f"upgrade to {target} compensated ({', '.join(done)}): {err}"
            await workflow.execute_activity_method(
                LedgerActivities.record_saga_note,
                SagaNote(
                    workflow_id=wf,
                    step="compensated",
                    message=message,
                    idempotency_key=f"{wf}-compensated",
                    customer_id=inp.customer_id,
                ),
                **DB,
            )
            workflow.upsert_search_attributes([TIER.value_set(current)])
            self._step("compensated", message)
            raise
        self._step("upgraded", f"{inp.customer_id} upgraded from {current} to {target}, paid")
        return result.model_copy(
            update={"outcome": "upgraded", "to_tier": target, "bill_id": bill.bill_id}
        )

    async def _revert(self, inp: UpgradeInput, previous: str) -> None:
        await workflow.execute_activity_method(
            CustomerActivities.change_tier, self._tier_change(inp, previous, "revert"), **DB
        )

    async def _void(self, bill_key: str, reason: str) -> None:
        await workflow.execute_activity_method(
            LedgerActivities.void_bill, VoidBillInput(idempotency_key=bill_key, reason=reason), **DB
        )
