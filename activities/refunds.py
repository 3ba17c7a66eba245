"""Activities over refund reservations: reserve under the bill's lock, complete, release.

The saga reserves before it calls the gateway, so racing refunds see each other and
together never exceed what was paid; a refund whose answer was lost keeps its reservation
until a look-up by its key says what happened.
"""

from __future__ import annotations

from decimal import Decimal

import asyncpg
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.refunds_messages import (
    CompleteRefundInput,
    RefundKey,
    RefundReservation,
    ReserveRefundInput,
)
from billing.errors import RefundRefused
from billing.events import EventType
from billing.ledger import EntryKind
from billing.refunds import refund_amount
from observability import metrics
from store import bills as sql
from store.bill_views import emit_bill, load_state
from store.outbox import emit

# Business refusals: retrying cannot change the answer.
REFUND_REFUSED = "RefundRefused"


def _refused(message: str) -> ApplicationError:
    return ApplicationError(message, type=REFUND_REFUSED, non_retryable=True)


def choose_capture(captures: list[asyncpg.Record], amount: Decimal, wanted: str | None) -> str:
    """The capture a refund goes back to: the one asked for, else the first with enough left."""
    for capture in captures:
        if wanted is not None and capture["gateway_reference"] != wanted:
            continue
        if capture["refundable"] >= amount:
            return str(capture["gateway_reference"])
    where = f"capture {wanted}" if wanted else "any single capture of this bill"
    raise _refused(f"{where} has less than {amount} left to refund")


class RefundActivities:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    @activity.defn
    async def reserve_refund(self, req: ReserveRefundInput) -> RefundReservation:
        """Check the refundable amount under the bill's row lock, then reserve it, once."""
        async with self.pool.acquire() as conn, conn.transaction():
            existing = await conn.fetchrow(sql.GET_REFUND, req.refund_id)
            bill = await conn.fetchrow(sql.GET_BILL_FOR_UPDATE, req.bill_id)
            if bill is None:
                raise _refused(f"no bill {req.bill_id}")
            captures = await conn.fetch(sql.CAPTURES_REFUNDABLE, req.bill_id)
            if existing is not None:
                amount = existing["amount"]
                reference = existing["charge_reference"] or (
                    captures[0]["gateway_reference"] if captures else ""
                )
            else:
                state = await load_state(conn, bill)
                reserved = await conn.fetchval(sql.RESERVED_REFUNDS, req.bill_id)
                try:
                    amount = refund_amount(
                        requested=req.amount,
                        paid=state.amount_paid,
                        refunded=state.amount_refunded,
                        reserved=reserved,
                        currency=bill["currency"],
                    )
                except RefundRefused as exc:
                    metrics.refund("refused")
                    raise _refused(exc.message) from exc
                reference = choose_capture(captures, amount, req.charge_reference)
                await conn.execute(
                    sql.INSERT_REFUND,
                    req.refund_id,
                    req.bill_id,
                    amount,
                    bill["currency"],
                    req.reason,
                    req.workflow_id,
                    reference,
                    req.gateway_key,
                )
            return RefundReservation(
                refund_id=req.refund_id,
                bill_id=req.bill_id,
                customer_id=bill["customer_id"],
                amount=amount,
                currency=bill["currency"],
                charge_reference=reference,
            )

    @activity.defn
    async def complete_refund(self, req: CompleteRefundInput) -> None:
        """The gateway refunded: the reservation becomes a ledger entry, once."""
        async with self.pool.acquire() as conn, conn.transaction():
            refund = await conn.fetchrow(sql.GET_REFUND, req.refund_id)
            assert refund is not None
            bill = await conn.fetchrow(sql.GET_BILL_FOR_UPDATE, refund["bill_id"])
            assert bill is not None
            refunded = await sql.add_entry(
                conn,
                key=f"refunded-{req.refund_id}",
                bill_id=bill["id"],
                customer_id=bill["customer_id"],
                kind=EntryKind.REFUNDED.value,
                amount=refund["amount"],
                currency=refund["currency"],
                gateway_reference=req.gateway_reference,
                memo=f"refund {req.refund_id}",
            )
            await conn.execute(sql.FINISH_REFUND, req.refund_id, "succeeded", req.gateway_reference)
            if refunded:
                metrics.refund("succeeded", refund["amount"], refund["currency"])
                refund_data = {
                    "id": req.refund_id,
                    "amount": refund["amount"],
                    "currency": refund["currency"],
                    "reason": refund["reason"],
                    "gateway_reference": req.gateway_reference,
                }
                await emit_bill(conn, EventType.BILL_REFUNDED, bill["id"], refund=refund_data)

    @activity.defn
    async def release_refund(self, req: RefundKey) -> None:
        """Compensation: give back a reservation that did not become a refund."""
        async with self.pool.acquire() as conn, conn.transaction():
            refund = await conn.fetchrow(sql.GET_REFUND, req.refund_id)
            done = await conn.execute(sql.FINISH_REFUND, req.refund_id, "released", None)
            if refund is None or done != "UPDATE 1":
                return
            customer_id = await conn.fetchval(sql.BILL_CUSTOMER_ID, refund["bill_id"])
            await emit(
                conn,
                type=EventType.REFUND_FAILED,
                customer_id=customer_id,
                data={
                    "id": req.refund_id,
                    "bill_id": refund["bill_id"],
                    "amount": refund["amount"],
                    "currency": refund["currency"],
                    "reason": refund["reason"],
                },
            )
        metrics.refund("released")
