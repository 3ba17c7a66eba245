"""Activities over the payment gateway. Declines are outcomes; transient errors retry.

The idempotency key comes from the workflow id (which carries the request's id) and the
attempt number, so a retried activity asks the gateway again with the same key and gets
the first result. When the answers stay lost, the saga stops asking and looks the key up
(`resolve_charge`, `resolve_refund`): unknown is never taken for failed.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import asyncpg
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.gateway_messages import (
    AttemptChargeInput,
    AttemptOutcome,
    GatewayReference,
    GatewayRefundInput,
    GatewayRefundOutcome,
    RefundLookup,
    ResolveChargeInput,
    Settlement,
)
from billing.errors import BillingError, DependencyUnavailable, RefundRefused
from billing.ledger import can_charge
from billing.payments import (
    ChargeOutcome,
    ChargeRequest,
    ChargeStatus,
    PaymentGateway,
    PaymentMethodType,
    RefundRequest,
)
from store import bills as bills_sql
from store import tiers as tiers_sql
from store.bill_views import load_state

GATEWAY_REFUSED = "GatewayRefused"  # in workflows.options.NON_RETRYABLE_ERROR_TYPES
GATEWAY_UNAVAILABLE = "GatewayUnavailable"  # retried under the activity's policy
CHARGE_IN_FLIGHT = "ChargeInFlight"  # another attempt holds the bill's claim
CLAIM_RACE = "ClaimRace"  # retried: the next try sees the other claim
CLAIM_STILL_OPEN = "ClaimStillOpen"  # retried: its claimant may still reach the gateway


def with_gateway_answer(base: AttemptOutcome, result: ChargeOutcome) -> AttemptOutcome:
    """The attempt as the gateway answered it (a charge call or a look-up by key)."""
    return base.model_copy(
        update={
            "status": result.status.value,
            "amount": result.amount,
            "gateway_reference": result.gateway_reference,
            "authorization_code": result.authorization_code,
            "decline_code": result.decline_code,
            "decline_kind": result.decline_kind.value if result.decline_kind else None,
            "message": result.message,
        }
    )


class GatewayActivities:
    def __init__(self, pool: asyncpg.Pool, gateway: PaymentGateway, claim_lease: timedelta) -> None:
        """`claim_lease`: how long after its claim an attempt may still reach the gateway
        under its key (the charge activity's retry budget plus one call's timeout)."""
        self.pool = pool
        self.gateway = gateway
        self.claim_lease = claim_lease

    @activity.defn
    async def charge(self, req: AttemptChargeInput) -> AttemptOutcome:
        """Charge what the bill still owes to the customer's newest usable payment method."""
        async with self.pool.acquire() as conn, conn.transaction():
            bill = await conn.fetchrow(bills_sql.GET_BILL_FOR_UPDATE, req.bill_id)
            if bill is None:
                raise ApplicationError(f"no bill {req.bill_id}", non_retryable=True)
            claim = await conn.fetchrow(bills_sql.ATTEMPT_BY_KEY, req.idempotency_key)
            other = await conn.fetchrow(bills_sql.ATTEMPT_IN_FLIGHT, req.bill_id)
            if claim is None and other is not None:
                # Unknown is not failed: that attempt is resolved before this one may start.
                return AttemptOutcome(
                    status="in_flight",
                    idempotency_key=other["idempotency_key"],
                    amount=other["amount"],
                    currency=bill["currency"],
                    payment_method_id=other["payment_method_id"],
                    method=other["method"],
                    gateway_reference=other["gateway_reference"],
                )
            if claim is None:
                state = await load_state(conn, bill)
                if not can_charge(state):
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
                    # Another attempt claimed the bill between our read and write: retry, and
                    # the retry answers `in_flight` with its key, to be resolved first.
                    raise ApplicationError(
                        f"another charge of {req.bill_id} claimed it first", type=CLAIM_RACE
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
        base = base.model_copy(update={"payment_method_id": method["id"], "method": method["type"]})
        return with_gateway_answer(base, result)

    @activity.defn
    async def resolve_charge(self, req: ResolveChargeInput) -> AttemptOutcome:
        """What became of the attempt under this key, asked of the gateway by the key.

        No charge under the key is a definite answer: the simulator (like any gateway
        with atomic idempotency) stores a charge before it answers, or never.
        """
        async with self.pool.acquire() as conn:
            claim = await conn.fetchrow(bills_sql.ATTEMPT_BY_KEY, req.idempotency_key)
            currency = await conn.fetchval(bills_sql.BILL_CURRENCY, req.bill_id)
        base = AttemptOutcome(
            status="failed",
            idempotency_key=req.idempotency_key,
            amount=claim["amount"] if claim else Decimal(0),
            currency=currency or "USD",
            payment_method_id=claim["payment_method_id"] if claim else None,
            method=claim["method"] if claim else "",
            message="the gateway holds no charge under this key: nothing was taken",
        )
        try:
            found = await self.gateway.find_charge(req.idempotency_key)
        except DependencyUnavailable as exc:
            raise ApplicationError(exc.message, type=GATEWAY_UNAVAILABLE) from exc
        activity.logger.info(
            "looked up charge key=%s: %s", req.idempotency_key, found.status if found else "none"
        )
        if found is None and claim is not None and claim["age"] < self.claim_lease:
            # Nothing under the key is definite only once the claimant can no longer send
            # it: until its lease ends, its call may still land (a pay-now resolving the
            # billing cycle's own attempt while that call is on its way).
            raise ApplicationError(
                f"{req.idempotency_key} was claimed {claim['age']} ago; its call may still "
                f"reach the gateway for {self.claim_lease - claim['age']}",
                type=CLAIM_STILL_OPEN,
            )
        return base if found is None else with_gateway_answer(base, found)

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

    @activity.defn
    async def resolve_refund(self, req: RefundLookup) -> GatewayRefundOutcome:
        """What became of the refund under this key; `not_found` is a definite no."""
        try:
            found = await self.gateway.find_refund(req.idempotency_key)
        except DependencyUnavailable as exc:
            raise ApplicationError(exc.message, type=GATEWAY_UNAVAILABLE) from exc
        if found is None:
            return GatewayRefundOutcome(
                status="not_found",
                gateway_reference="",
                message="the gateway holds no refund under this key: nothing was refunded",
            )
        return GatewayRefundOutcome(
            status=found.status, gateway_reference=found.gateway_reference, message=found.message
        )
