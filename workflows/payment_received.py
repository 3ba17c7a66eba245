"""PaymentReceivedWorkflow: money the gateway took for a bill, recorded when no saga waits.

Started by the gateway webhook when the charge saga has ended, and by reconciliation for
every capture the ledger lacks; its id is `payment-{gateway reference}`, so however many
paths find the same capture it is recorded once. Then what money arriving sets off:
an excess is refunded, a write-off reversed gives the customer their tier back.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.ledger import LedgerActivities
    from activities.ledger_messages import PaymentReceivedInput
    from workflows.follow_ups import after_payment
    from workflows.options import DB
    from workflows.payment_received_messages import PaymentReceivedResult
    from workflows.status import SagaWorkflow


@workflow.defn
class PaymentReceivedWorkflow(SagaWorkflow):
    @workflow.run
    async def run(self, inp: PaymentReceivedInput) -> PaymentReceivedResult:
        ref = inp.gateway_reference
        self._step(
            "recording", f"{inp.amount} {inp.currency} ({ref}) from {inp.source}", inp.bill_id
        )
        recorded = await workflow.execute_activity_method(
            LedgerActivities.record_payment, inp, **DB
        )
        bill = recorded.bill.model_copy(update={"write_off_reversed": recorded.write_off_reversed})
        refunded = await after_payment(bill.customer_id, bill, ref)
        self._step(
            bill.status, f"bill {bill.bill_id} is {bill.status}; refunded {refunded}", bill.bill_id
        )
        return PaymentReceivedResult(
            bill_id=bill.bill_id,
            gateway_reference=ref,
            recorded=recorded.recorded,
            status=bill.status,
            excess_refunded=refunded,
            write_off_reversed=recorded.write_off_reversed,
        )
