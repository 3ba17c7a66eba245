"""Activities over the payment gateway. Declines are outcomes; transient errors retry.

The idempotency key comes from the workflow id and the attempt number, so a retried
activity (timeout, crash, lost answer) asks the gateway again with the same key and
gets the first result: a charge is captured once.
"""

from __future__ import annotations

import asyncpg
from temporalio import activity
from temporalio.exceptions import ApplicationError

from billing.errors import BillingError, DependencyUnavailable, RefundRefused
from billing.messages import (
    AttemptChargeInput,
    AttemptOutcome,
    GatewayReference,
    GatewayRefundInput,
    GatewayRefundOutcome,
    Settlement,
)
from billing.payments import (
    ChargeRequest,
    ChargeStatus,
    PaymentGateway,
    PaymentMethodType,
    RefundRequest,
)
from store import bills as bills_sql
from store import tiers as tiers_sql

from .ledger import load_state

GATEWAY_REFUSED = "GatewayRefused"  # in workflows.options.NON_RETRYABLE_ERROR_TYPES
GATEWAY_UNAVAILABLE = "GatewayUnavailable"  # retried under the activity's policy
CHARGE_IN_FLIGHT = "ChargeInFlight"  # another attempt holds the bill's claim


class GatewayActivities:
    def __init__(self, pool: asyncpg.Pool, gateway: PaymentGateway) -> None:
        self.pool = pool
        self.gateway = gateway

    @activity.defn
    async def charge(self, req: AttemptChargeInput) -> AttemptOutcome:
        """Charge what the bill still owes to the customer's newest usable payment method."""
        async with self.pool.acquire() as conn, conn.transaction():
            bill = await conn.fetchrow(bills_sql.GET_BILL_FOR_UPDATE, req.bill_id)
            if bill is None:
                raise ApplicationError(f"no bill {req.bill_id}", non_retryable=True)
            claim = await conn.fetchrow(bills_sql.ATTEMPT_BY_KEY, req.idempotency_key)
            if claim is None:
                state = await load_state(conn, bill)
                if state.amount_due <= 0 or state.status.value in ("void", "paid"):
                    return AttemptOutcome(status="not_due", idempotency_key=req.idempotency_key)
                amount = state.amount_due
                method = await conn.fetchrow(
                    tiers_sql.DEFAULT_PAYMENT_METHOD,
                    bill["customer_id"],
                    req.excluded_payment_methods,
                )
            else:
                # A retry of this attempt: the same method and amount, so the same key
                # asks the gateway the same question and gets the first answer.
                amount = claim["amount"]
                method = await conn.fetchrow(tiers_sql.PAYMENT_METHOD, claim["payment_method_id"])
            base = AttemptOutcome(
                status="no_method",
                idempotency_key=req.idempotency_key,
                amount=amount,
                currency=bill["currency"],
                message="no usable payment method on file",
            )
            if method is None:
                return base
            if claim is None:
                try:
                    await conn.execute(
                        bills_sql.CLAIM_ATTEMPT,
                        req.idempotency_key,
                        req.bill_id,
                        method["type"],
                        method["id"],
                        amount,
                    )
                except asyncpg.UniqueViolationError as exc:
                    raise ApplicationError(
                        f"another charge of {req.bill_id} is in flight",
                        type=CHARGE_IN_FLIGHT,
                        non_retryable=True,
                    ) from exc
        try:
            result = await self.gateway.charge(
                ChargeRequest(
                    idempotency_key=req.idempotency_key,
                    amount=amount,
                    currency=bill["currency"],
                    method_type=PaymentMethodType(method["type"]),
                    token=method["token"],
                    description=f"Bill {bill['id']} ({bill['period']})",
                    metadata={
                        "bill_id": bill["id"],
                        "customer_id": bill["customer_id"],
                        "workflow_id": req.workflow_id,
                    },
                )
            )
        except DependencyUnavailable as exc:
            # Transient: the activity's retry policy asks again with the same key.
            raise ApplicationError(exc.message, type=GATEWAY_UNAVAILABLE) from exc
        except BillingError as exc:
            # The gateway refused the request itself (conflicting key, bad input): final.
            raise ApplicationError(exc.message, type=GATEWAY_REFUSED, non_retryable=True) from exc
        status = {
            ChargeStatus.SUCCEEDED: "succeeded",
            ChargeStatus.PENDING: "pending",
            ChargeStatus.FAILED: "failed",
        }[result.status]
        return base.model_copy(
            update={
                "status": status,
                "amount": result.amount,
                "payment_method_id": method["id"],
                "method": method["type"],
                "gateway_reference": result.gateway_reference,
                "authorization_code": result.authorization_code,
                "decline_code": result.decline_code,
                "decline_kind": result.decline_kind.value if result.decline_kind else None,
                "message": result.message,
            }
        )

    @activity.defn
    async def get_charge(self, req: GatewayReference) -> Settlement | None:
        """The gateway's current word on a pending transfer; None while still pending."""
        try:
            result = await self.gateway.get_charge(req.gateway_reference)
        except DependencyUnavailable as exc:
            raise ApplicationError(exc.message, type=GATEWAY_UNAVAILABLE) from exc
        if result.status == ChargeStatus.PENDING:
            return None
        return Settlement(
            gateway_reference=result.gateway_reference,
            status="succeeded" if result.status == ChargeStatus.SUCCEEDED else "failed",
            authorization_code=result.authorization_code,
            decline_code=result.decline_code,
            message=result.message,
        )

    @activity.defn
    async def refund(self, req: GatewayRefundInput) -> GatewayRefundOutcome:
        try:
            result = await self.gateway.refund(
                RefundRequest(
                    idempotency_key=req.idempotency_key,
                    charge_reference=req.charge_reference,
                    amount=req.amount,
                    currency=req.currency,
                    reason=req.reason,
                )
            )
        except RefundRefused as exc:
            raise ApplicationError(exc.message, type=GATEWAY_REFUSED, non_retryable=True) from exc
        except DependencyUnavailable as exc:
            raise ApplicationError(exc.message, type=GATEWAY_UNAVAILABLE) from exc
        return GatewayRefundOutcome(
            status=result.status, gateway_reference=result.gateway_reference, message=result.message
        )
