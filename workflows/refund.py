"""RefundWorkflow: refund a paid bill in full or in part, never above what is refundable.

The refundable amount is checked and reserved under the bill's row lock inside
the saga (not only in the API), so racing refunds are serialized per bill. A
refund the gateway does not complete releases its reservation.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.gateway import GatewayActivities
    from activities.ledger import REFUND_REFUSED, LedgerActivities
    from billing.messages import (
        CompleteRefundInput,
        GatewayRefundInput,
        RefundInput,
        RefundKey,
        RefundResult,
        ReserveRefundInput,
        SagaStatus,
    )
    from workflows.options import DB, GATEWAY
    from workflows.saga import Saga


def _refused(err: ActivityError) -> bool:
    cause = err.cause
    return isinstance(cause, ApplicationError) and cause.type == REFUND_REFUSED


@workflow.defn
class RefundWorkflow:
    def __init__(self) -> None:
        self._status = SagaStatus(step="starting")

    @workflow.query
    def status(self) -> SagaStatus:
        return self._status

    def _step(self, step: str, details: str, bill_id: str) -> None:
        self._status = SagaStatus(step=step, details=details, bill_id=bill_id)
        workflow.set_current_details(details)

    @workflow.run
    async def run(self, inp: RefundInput) -> RefundResult:
        wf = workflow.info().workflow_id
        refund_id = "rf_" + wf.rsplit("-", 1)[-1]
        self._step("reserving", f"checking what is refundable on {inp.bill_id}", inp.bill_id)
        try:
            reservation = await workflow.execute_activity_method(
                LedgerActivities.reserve_refund,
                ReserveRefundInput(
                    refund_id=refund_id,
                    bill_id=inp.bill_id,
                    amount=inp.amount,
                    reason=inp.reason,
                    workflow_id=wf,
                ),
                **DB,
            )
        except ActivityError as err:
            if not _refused(err):
                raise
            message = str(err.cause)
            self._step("refused", message, inp.bill_id)
            raise ApplicationError(message, type=REFUND_REFUSED, non_retryable=True) from err

        saga = Saga()
        saga.add("release reservation", lambda: self._release(refund_id))
        try:
            self._step(
                "refunding",
                f"refunding {reservation.amount} {reservation.currency} on {inp.bill_id}",
                inp.bill_id,
            )
            outcome = await workflow.execute_activity_method(
                GatewayActivities.refund,
                GatewayRefundInput(
                    idempotency_key=f"{wf}-refund",
                    charge_reference=reservation.charge_reference,
                    amount=reservation.amount,
                    currency=reservation.currency,
                    reason=inp.reason,
                ),
                **GATEWAY,
            )
            if outcome.status != "succeeded":
                raise ApplicationError(outcome.message or "the gateway refused the refund")
            await workflow.execute_activity_method(
                LedgerActivities.complete_refund,
                CompleteRefundInput(
                    refund_id=refund_id, gateway_reference=outcome.gateway_reference
                ),
                **DB,
            )
        except Exception:
            await saga.compensate()
            self._step("failed", "the refund failed; its reservation was released", inp.bill_id)
            raise
        self._step("refunded", f"refunded {reservation.amount} {reservation.currency}", inp.bill_id)
        return RefundResult(
            refund_id=refund_id,
            bill_id=inp.bill_id,
            outcome="refunded",
            amount=reservation.amount,
            currency=reservation.currency,
        )

    async def _release(self, refund_id: str) -> None:
        await workflow.execute_activity_method(
            LedgerActivities.release_refund, RefundKey(refund_id=refund_id), **DB
        )
