"""What money arriving sets off, shared by the sagas that record it (not a workflow).

- Money beyond what a bill owes is refunded from the capture that brought it.
- A late payment of a written-off bill gives the customer back the tier that dunning took.
- Dunning's downgrade is a tier change like any other: it waits its turn.

Children are started by type name: the upgrade saga starts charge sagas, which call these.
"""

from __future__ import annotations

from decimal import Decimal

from temporalio import workflow
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

with workflow.unsafe.imports_passed_through():
    from activities.customers import CustomerActivities
    from activities.ledger_messages import BillKey, BillRef
    from billing.catalog import Tier
    from billing.workflow_ids import manual_upgrade_id, overpayment_refund_id
    from workflows.options import DB
    from workflows.refund_messages import RefundInput, RefundResult
    from workflows.search_attributes import search_attributes
    from workflows.upgrade_messages import ChangeReason, UpgradeInput, UpgradeResult


async def after_payment(customer_id: str, bill: BillRef, reference: str) -> Decimal:
    """Refund any excess and restore a tier taken for this bill; returns what was refunded."""
    refunded = Decimal(0)
    if bill.excess > 0 and reference:
        refunded = await refund_excess(customer_id, bill, reference)
    if bill.write_off_reversed:
        await restore_tier(customer_id, bill.bill_id)
    return refunded


async def refund_excess(customer_id: str, bill: BillRef, reference: str) -> Decimal:
    """One overpayment refund per capture that overpaid, however often it is found."""
    try:
        result: RefundResult = await workflow.execute_child_workflow(
            "RefundWorkflow",
            RefundInput(
                bill_id=bill.bill_id,
                amount=bill.excess,
                reason=f"overpayment: {bill.bill_id} was already paid when {reference} arrived",
                request_id=f"overpayment-{reference}",
                charge_reference=reference,
            ),
            id=overpayment_refund_id(bill.bill_id, reference),
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            result_type=RefundResult,
            search_attributes=search_attributes(
                customer_id=customer_id, tier=bill.tier, bill_id=bill.bill_id, period=bill.period
            ),
            static_summary=f"Refund the overpayment of {bill.excess} {bill.currency}",
        )
    except WorkflowAlreadyStartedError:
        return Decimal(0)  # another path found the same capture and is refunding it
    return result.amount


async def restore_tier(customer_id: str, bill_id: str) -> None:
    """Dunning downgraded the customer for this bill, which is now paid: undo it, in turn."""
    restore = await workflow.execute_activity_method(
        CustomerActivities.tier_to_restore, BillKey(bill_id=bill_id), **DB
    )
    if restore.tier is not None:
        await _change_tier(customer_id, restore.tier, "restore", f"restore-{bill_id}")


async def dunning_downgrade(customer_id: str, bill_id: str) -> None:
    await _change_tier(customer_id, Tier.FREE, "dunning", f"dunning-{bill_id}")


async def _change_tier(customer_id: str, tier: Tier, reason: ChangeReason, request_id: str) -> None:
    try:
        await workflow.execute_child_workflow(
            "UpgradeWorkflow",
            UpgradeInput(
                customer_id=customer_id,
                target_tier=tier,
                reason=reason,
                request_id=request_id,
            ),
            id=manual_upgrade_id(customer_id, tier, request_id),
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            result_type=UpgradeResult,
            search_attributes=search_attributes(customer_id=customer_id),
            static_summary=f"Move {customer_id} to {tier} ({reason})",
        )
    except WorkflowAlreadyStartedError:
        return
