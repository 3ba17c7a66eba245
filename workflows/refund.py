"""RefundWorkflow: refund a paid bill in full or in part, never above what is refundable.

The refundable amount is checked and reserved under the bill's row lock inside the saga
(not only in the API), so racing refunds are serialized per bill. A refund whose answer
is lost keeps its reservation and is looked up by its key; only a definite "no refund"
releases it.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.config import ConfigActivities
    from activities.gateway import GatewayActivities
    from activities.gateway_messages import GatewayRefundInput, GatewayRefundOutcome, RefundLookup
    from activities.refunds import REFUND_REFUSED, RefundActivities
    from activities.refunds_messages import CompleteRefundInput, RefundKey, ReserveRefundInput
    from workflows.options import (
        DB,
        GATEWAY,
        LOOKUP,
        NON_RETRYABLE_ERROR_TYPES,
        ActivityOptions,
        gateway_options,
    )
    from workflows.refund_messages import RefundInput, RefundResult
    from workflows.saga import Saga
    from workflows.status import SagaWorkflow

# Issue 12: the refund id comes from the request (it was cut from the workflow id, so
# `order-1` on one bill and `return-1` on another were both `rf_1`), and a refund whose
# answer was lost is looked up, not released.
KEYS_FROM_REQUEST = "refund-keys-from-request"
RESOLVE_UNKNOWN = "resolve-unknown-refunds"


def _cause_type(err: ActivityError) -> str | None:
    cause = err.cause
    return cause.type if isinstance(cause, ApplicationError) else None


@workflow.defn
class RefundWorkflow(SagaWorkflow):
    def __init__(self) -> None:
        super().__init__()
        self._gateway: ActivityOptions = GATEWAY

    @workflow.run
    async def run(self, inp: RefundInput) -> RefundResult:
        wf = workflow.info().workflow_id
        if workflow.patched(KEYS_FROM_REQUEST):
            refund_id = f"rf_{inp.bill_id}_{inp.request_id}"
            policy = await workflow.execute_activity_method(ConfigActivities.charge_policy, **DB)
            self._gateway = gateway_options(policy.gateway_retry_budget)
        else:
            refund_id = "rf_" + wf.rsplit("-", 1)[-1]
        gateway_key = f"{wf}-refund"
        self._step("reserving", f"checking what is refundable on {inp.bill_id}", inp.bill_id)
        try:
            reservation = await workflow.execute_activity_method(
                RefundActivities.reserve_refund,
                ReserveRefundInput(
                    refund_id=refund_id,
                    bill_id=inp.bill_id,
                    amount=inp.amount,
                    reason=inp.reason,
                    workflow_id=wf,
                    charge_reference=inp.charge_reference,
                    gateway_key=gateway_key,
                ),
                **DB,
            )
        except ActivityError as err:
            if _cause_type(err) != REFUND_REFUSED:
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
            outcome = await self._refund(
                GatewayRefundInput(
                    idempotency_key=gateway_key,
                    charge_reference=reservation.charge_reference,
                    amount=reservation.amount,
                    currency=reservation.currency,
                    reason=inp.reason,
                ),
                inp.bill_id,
            )
            if outcome.status != "succeeded":
                raise ApplicationError(outcome.message or "the gateway refused the refund")
            await workflow.execute_activity_method(
                RefundActivities.complete_refund,
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

    async def _refund(self, request: GatewayRefundInput, bill_id: str) -> GatewayRefundOutcome:
        """The gateway call; an answer lost past its retries is looked up by the key."""
        try:
            return await workflow.execute_activity_method(
                GatewayActivities.refund, request, **self._gateway
            )
        except ActivityError as err:
            if _cause_type(err) in NON_RETRYABLE_ERROR_TYPES:
                raise  # the gateway said no: a definite answer
            if not workflow.patched(RESOLVE_UNKNOWN):
                raise
        key = request.idempotency_key
        self._step("resolving", f"the refund's answer was lost; looking up {key}", bill_id)
        return await workflow.execute_activity_method(
            GatewayActivities.resolve_refund, RefundLookup(idempotency_key=key), **LOOKUP
        )

    async def _release(self, refund_id: str) -> None:
        await workflow.execute_activity_method(
            RefundActivities.release_refund, RefundKey(refund_id=refund_id), **DB
        )
