"""UpgradeWorkflow: change the tier, issue a prorated bill, charge it; compensate on failure.

Compensations are registered before their step and are safe whether or not it
happened: revert the tier (by key), void the bill the step's key names. A downgrade,
dunning's downgrade and a restore after a late payment change the tier and issue no
bill. Every change first takes its customer's turn (SubscriptionWorkflow), so tier
changes of one customer run one at a time, and uses one `workflow.now()` for the change
and its bill.
"""

from __future__ import annotations

from datetime import datetime

from temporalio import workflow
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.customers import CustomerActivities
    from activities.customers_messages import ChangeTierInput, CustomerKey
    from activities.ledger import LedgerActivities
    from activities.ledger_messages import IssueUpgradeBillInput, SagaNote, VoidBillInput
    from activities.subscriptions import SubscriptionActivities
    from activities.subscriptions_messages import TurnRequest
    from billing.catalog import Tier, is_upgrade
    from billing.ledger import BillStatus
    from billing.workflow_ids import charge_id, subscription_id
    from workflows.charge import ChargeWorkflow
    from workflows.charge_messages import ChargeInput
    from workflows.options import DB
    from workflows.saga import Saga
    from workflows.search_attributes import BILL_ID, TIER, search_attributes
    from workflows.status import SagaWorkflow
    from workflows.upgrade_messages import UpgradeInput, UpgradeResult

# Issue 12: tier changes of one customer wait for their turn (sagas from before did not).
ONE_AT_A_TIME = "one-tier-change-at-a-time"
_NO_BILL = ("dunning", "restore")  # tier changes that settle nothing new
_ONLY_UP = ("auto_conversion", "restore")  # never a reason to move a customer down
NEVER_DOWN_BY_ACCIDENT = "conversion-never-downgrades"


@workflow.defn
class UpgradeWorkflow(SagaWorkflow):
    def __init__(self) -> None:
        super().__init__()
        self._turn = False

    @workflow.signal
    def turn_granted(self, _: TurnRequest) -> None:
        self._turn = True

    def _key(self, inp: UpgradeInput, step: str) -> str:
        """From the request when there is one; sagas from before keyed by workflow id."""
        if inp.request_id:
            return f"upgrade-{inp.customer_id}-{inp.request_id}-{step}"
        return f"{workflow.info().workflow_id}-{step}"

    def _tier_change(
        self, inp: UpgradeInput, to_tier: Tier, step: str, at: datetime
    ) -> ChangeTierInput:
        return ChangeTierInput(
            customer_id=inp.customer_id,
            to_tier=to_tier,
            reason=f"{inp.reason}: {step}",
            workflow_id=workflow.info().workflow_id,
            idempotency_key=self._key(inp, step),
            at=at,
            # A failed automatic conversion is not retried on every later request, and a
            # customer dunning downgraded is not converted back on the next crossing.
            disable_auto_upgrade=(step == "revert" and inp.reason == "auto_conversion")
            or inp.reason == "dunning",
        )

    @workflow.run
    async def run(self, inp: UpgradeInput) -> UpgradeResult:
        if not workflow.patched(ONE_AT_A_TIME):
            return await self._change(inp)
        me = TurnRequest(customer_id=inp.customer_id, workflow_id=workflow.info().workflow_id)
        self._step("waiting_for_turn", f"waiting for {inp.customer_id}'s earlier tier changes")
        await workflow.execute_activity_method(SubscriptionActivities.request_turn, me, **DB)
        await workflow.wait_condition(lambda: self._turn)
        try:
            return await self._change(inp)
        finally:
            await workflow.get_external_workflow_handle(subscription_id(inp.customer_id)).signal(
                "release", me
            )

    async def _change(self, inp: UpgradeInput) -> UpgradeResult:
        at = workflow.now()  # one instant for the tier change and its bill
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
        down = is_upgrade(target, current)  # a move strictly down TIER_ORDER
        if down and inp.reason in _ONLY_UP and workflow.patched(NEVER_DOWN_BY_ACCIDENT):
            # A conversion (or restore) whose turn came after a bigger upgrade: nothing to do.
            self._step("unchanged", f"{inp.customer_id} is on {current}, above {target}")
            return result
        if down or inp.reason in _NO_BILL:
            await workflow.execute_activity_method(
                CustomerActivities.change_tier,
                self._tier_change(inp, target, "downgrade" if down else inp.reason, at),
                **DB,
            )
            workflow.upsert_search_attributes([TIER.value_set(target)])
            self._step("downgraded", f"{inp.customer_id} moved from {current} to {target}")
            return result.model_copy(update={"outcome": "downgraded", "to_tier": target})
        return await self._upgrade(inp, current, target, at, result)

    async def _upgrade(
        self, inp: UpgradeInput, current: Tier, target: Tier, at: datetime, result: UpgradeResult
    ) -> UpgradeResult:
        wf = workflow.info().workflow_id
        saga = Saga()
        bill_key = self._key(inp, "bill")
        try:
            saga.add("revert tier", lambda: self._revert(inp, current, at))
            self._step("changing_tier", f"moving {inp.customer_id} from {current} to {target}")
            await workflow.execute_activity_method(
                CustomerActivities.change_tier, self._tier_change(inp, target, "change", at), **DB
            )
            workflow.upsert_search_attributes([TIER.value_set(target)])

            saga.add("void bill", lambda: self._void(bill_key, "upgrade charge failed"))
            bill = await workflow.execute_activity_method(
                LedgerActivities.issue_upgrade_bill,
                IssueUpgradeBillInput(
                    customer_id=inp.customer_id,
                    from_tier=current,
                    to_tier=target,
                    at=at,
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
            if bill.status != BillStatus.PAID:
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
                    idempotency_key=self._key(inp, "compensated"),
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

    async def _revert(self, inp: UpgradeInput, previous: Tier, at: datetime) -> None:
        await workflow.execute_activity_method(
            CustomerActivities.change_tier, self._tier_change(inp, previous, "revert", at), **DB
        )

    async def _void(self, bill_key: str, reason: str) -> None:
        await workflow.execute_activity_method(
            LedgerActivities.void_bill, VoidBillInput(idempotency_key=bill_key, reason=reason), **DB
        )
