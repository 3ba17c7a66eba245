"""Money the gateway captured, into the ledger once per gateway reference, with the charge
attempt that brought it; in the caller's transaction, under the bill's row lock."""

from __future__ import annotations

from decimal import Decimal

import asyncpg

from activities.ledger_messages import (
    BillRef,
    CaptureRecorded,
    PaymentReceivedInput,
    RecordAttemptInput,
)
from billing.events import EventType
from billing.ledger import BillStatus, EntryKind, write_off_reversal
from billing.payments import ChargeStatus, recorded_attempt_status
from observability import metrics
from store import bills as sql
from store.bill_views import emit_bill, load_state
from store.db import Conn

from .bill_ref import bill_ref


async def record_capture(
    conn: Conn,
    bill: asyncpg.Record,
    *,
    reference: str,
    amount: Decimal,
    currency: str,
    memo: str,
    method: str,
) -> tuple[bool, bool]:
    """Money the gateway captured, into the ledger once per gateway reference.

    Whatever the bill's state: a late payment of a written-off bill reverses the write-off
    by an entry; money beyond what the bill owes shows as its `excess`, for the caller to
    refund. Returns (recorded now, write-off reversed now).
    """
    before = await load_state(conn, bill)
    recorded = await sql.add_entry(
        conn,
        key=f"captured-{reference}",
        bill_id=bill["id"],
        customer_id=bill["customer_id"],
        kind=EntryKind.CAPTURED.value,
        amount=amount,
        currency=currency,
        gateway_reference=reference,
        memo=memo,
    )
    if not recorded:
        return False, False
    metrics.revenue_collected(amount, currency, method, bill["tier"])
    state = await load_state(conn, bill)
    reversed_ = state.written_off > 0
    if reversed_:
        await sql.add_entry(
            conn,
            key=f"write_off_reversed-{reference}",
            bill_id=bill["id"],
            customer_id=bill["customer_id"],
            kind=EntryKind.WRITE_OFF_REVERSED.value,
            amount=write_off_reversal(state, amount),
            currency=currency,
            gateway_reference=None,
            memo=f"paid late by {reference}",
        )
    if (
        before.status != BillStatus.PAID
        and (await load_state(conn, bill)).status == BillStatus.PAID
    ):
        await emit_bill(conn, EventType.BILL_PAID, bill["id"])
    return True, reversed_


async def record_attempt(conn: Conn, req: RecordAttemptInput) -> BillRef:
    """A saga's try, once per attempt key, and the money it captured."""
    out = req.outcome
    status = recorded_attempt_status(out.status)
    bill = await conn.fetchrow(sql.GET_BILL_FOR_UPDATE, req.bill_id)
    assert bill is not None
    changed = None
    if status is not None:
        changed = await conn.fetchval(
            sql.UPSERT_ATTEMPT,
            out.idempotency_key,
            req.bill_id,
            status.value,
            out.method or "none",
            out.payment_method_id,
            out.amount,
            out.gateway_reference,
            out.authorization_code,
            out.decline_code,
            out.message,
        )
        metrics.charge_recorded(out.status, out.method, out.idempotency_key)
    reversed_ = False
    if status is ChargeStatus.SUCCEEDED and out.gateway_reference:
        _, reversed_ = await record_capture(
            conn,
            bill,
            reference=out.gateway_reference,
            amount=out.amount,
            currency=out.currency,
            memo=f"{out.method} authorization {out.authorization_code}",
            method=out.method,
        )
    if status is ChargeStatus.FAILED and changed is not None:
        await emit_bill(
            conn,
            EventType.BILL_PAYMENT_FAILED,
            req.bill_id,
            decline_code=out.decline_code,
            decline_kind=out.decline_kind,
            message=out.message,
            next_try_at=req.next_try_at,
        )
    ref = bill_ref(bill, await load_state(conn, bill))
    return ref.model_copy(update={"write_off_reversed": reversed_}) if reversed_ else ref


async def record_payment(conn: Conn, req: PaymentReceivedInput) -> CaptureRecorded | None:
    """A capture found outside the charge saga (late webhook, reconciliation), once; None:
    no such bill."""
    bill = await conn.fetchrow(sql.GET_BILL_FOR_UPDATE, req.bill_id)
    if bill is None:
        return None
    # A transfer the saga left pending is closed by the money that settled it.
    await conn.execute(sql.SETTLE_ATTEMPT_BY_REFERENCE, req.gateway_reference)
    recorded, reversed_ = await record_capture(
        conn,
        bill,
        reference=req.gateway_reference,
        amount=req.amount,
        currency=req.currency,
        memo=f"{req.method or 'payment'} found by {req.source}",
        method=req.method,
    )
    return CaptureRecorded(
        bill=bill_ref(bill, await load_state(conn, bill)),
        recorded=recorded,
        write_off_reversed=reversed_,
    )
