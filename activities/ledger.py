"""Activities over the ledger: issue, void, record captures, write off, reserve refunds.

Thin adapters: the figures come from the pure domain (`billing.bills`,
`billing.ledger`, `billing.refunds`); every write is idempotent by its key.
"""

from __future__ import annotations

import secrets
from decimal import Decimal
from typing import Any

import asyncpg
from temporalio import activity
from temporalio.exceptions import ApplicationError

from billing.bills import BillDraft, UsageAggregate, build_cycle_bill, build_upgrade_bill
from billing.catalog import ContractOverrides, PriceCatalog, Tier, UsageKind
from billing.events import EventType
from billing.ledger import BillState, BillStatus, EntryKind, can_void, can_write_off
from billing.messages import (
    BillKey,
    BillRef,
    CaptureRecorded,
    IssueCycleBillInput,
    IssueCycleBillResult,
    IssueUpgradeBillInput,
    PaymentReceivedInput,
    RecordAttemptInput,
    SagaNote,
    VoidBillInput,
    WriteOffInput,
)
from billing.periods import period_bounds, subscribed_during
from observability import metrics
from store import bills as sql
from store import customers, tiers
from store.bill_views import emit_bill, load_state
from store.db import Conn


def new_bill_id() -> str:
    return "bill_" + secrets.token_hex(8)


def bill_ref(bill: asyncpg.Record, state: BillState) -> BillRef:
    return BillRef(
        bill_id=bill["id"],
        customer_id=bill["customer_id"],
        period=bill["period"],
        kind=bill["kind"],
        tier=bill["tier"],
        total=bill["total"],
        currency=bill["currency"],
        status=state.status.value,
        amount_due=state.amount_due,
        excess=state.excess,
    )


def _bill_values(draft: BillDraft, **extra: Any) -> dict[str, Any]:
    return {
        "period": draft.period,
        "tier": draft.tier.value,
        "currency": draft.currency,
        "lines": [line.model_dump(mode="json") for line in draft.lines],
        "subtotal": draft.subtotal,
        "tax": draft.tax,
        "total": draft.total,
        **extra,
    }


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
            amount=min(state.written_off, amount),
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


class LedgerActivities:
    """Postgres-side steps of the sagas; built once with the pool and the price catalog."""

    def __init__(self, pool: asyncpg.Pool, catalog: PriceCatalog) -> None:
        self.pool = pool
        self.catalog = catalog

    async def _issue(self, conn: Conn, values: dict[str, Any]) -> BillRef:
        await sql.insert_bill(conn, values)
        bill = await conn.fetchrow(sql.FIND_BILL_BY_KEY, values["idempotency_key"])
        assert bill is not None
        await sql.add_entry(
            conn,
            key=f"issued-{bill['id']}",
            bill_id=bill["id"],
            customer_id=bill["customer_id"],
            kind=EntryKind.ISSUED.value,
            amount=bill["total"],
            currency=bill["currency"],
            memo=f"{bill['kind']} bill for {bill['period']}",
        )
        await emit_bill(conn, EventType.BILL_CREATED, bill["id"])
        return bill_ref(bill, await load_state(conn, bill))

    @activity.defn
    async def issue_cycle_bill(self, req: IssueCycleBillInput) -> IssueCycleBillResult:
        """Build and store the period's bill once; a second call returns the first."""
        async with self.pool.acquire() as conn, conn.transaction():
            await sql.lock_period(conn, req.customer_id, req.period)
            existing = await conn.fetchrow(sql.FIND_CYCLE_BILL, req.customer_id, req.period)
            if existing is not None:
                return IssueCycleBillResult(
                    bill=bill_ref(existing, await load_state(conn, existing))
                )
            customer = await conn.fetchrow(customers.GET_CUSTOMER, req.customer_id)
            if customer is None:
                raise ApplicationError(f"no customer {req.customer_id}", non_retryable=True)
            if not subscribed_during(req.period, customer["started_at"]):
                return IssueCycleBillResult(bill=None, reason="subscription began after the period")
            start, _ = period_bounds(req.period)
            tier = await conn.fetchval(
                tiers.TIER_AT, req.customer_id, max(start, customer["started_at"])
            )
            groups = await conn.fetch(tiers.USAGE_GROUPS, req.customer_id, req.period)
            draft = build_cycle_bill(
                catalog=self.catalog,
                period=req.period,
                tier=Tier(tier or customer["tier"]),
                tax_rate=customer["tax_rate"],
                usage=[
                    UsageAggregate(
                        kind=UsageKind(g["kind"]),
                        unit_price=g["unit_price"],
                        quantity=g["quantity"],
                    )
                    for g in groups
                ],
                started_at=customer["started_at"],
                overrides=ContractOverrides.model_validate(customer["overrides"] or {}),
            )
            values = _bill_values(
                draft,
                id=new_bill_id(),
                customer_id=req.customer_id,
                kind="cycle",
                workflow_id=req.workflow_id,
                idempotency_key=f"cycle-{req.customer_id}-{req.period}",
            )
            return IssueCycleBillResult(bill=await self._issue(conn, values))

    @activity.defn
    async def issue_upgrade_bill(self, req: IssueUpgradeBillInput) -> BillRef:
        """The prorated base-fee difference for the rest of the month, issued once per key."""
        async with self.pool.acquire() as conn, conn.transaction():
            existing = await conn.fetchrow(sql.FIND_BILL_BY_KEY, req.idempotency_key)
            if existing is not None:
                return bill_ref(existing, await load_state(conn, existing))
            customer = await conn.fetchrow(customers.GET_CUSTOMER, req.customer_id)
            assert customer is not None
            draft = build_upgrade_bill(
                catalog=self.catalog,
                from_tier=Tier(req.from_tier),
                to_tier=Tier(req.to_tier),
                at=req.at,
                tax_rate=customer["tax_rate"],
            )
            values = _bill_values(
                draft,
                id=new_bill_id(),
                customer_id=req.customer_id,
                kind="upgrade",
                workflow_id=req.workflow_id,
                idempotency_key=req.idempotency_key,
            )
            return await self._issue(conn, values)

    @activity.defn
    async def void_bill(self, req: VoidBillInput) -> None:
        """Compensation: void the bill the key names, if it exists and nothing was captured."""
        async with self.pool.acquire() as conn, conn.transaction():
            bill = await conn.fetchrow(sql.FIND_BILL_BY_KEY, req.idempotency_key)
            if bill is None:
                return
            bill = await conn.fetchrow(sql.GET_BILL_FOR_UPDATE, bill["id"])
            assert bill is not None
            # A bill holding captured money, already void or paid (a 0.00 bill is paid
            # when issued) stays as it is: nothing of it is owed to void.
            if not can_void(await load_state(conn, bill)):
                return
            await sql.add_entry(
                conn,
                key=f"voided-{bill['id']}",
                bill_id=bill["id"],
                customer_id=bill["customer_id"],
                kind=EntryKind.VOIDED.value,
                amount=Decimal(0),
                currency=bill["currency"],
                memo=req.reason,
            )
            await conn.execute(sql.SET_VOID_REASON, bill["id"], req.reason)

    @activity.defn
    async def get_bill(self, req: BillKey) -> BillRef:
        async with self.pool.acquire() as conn:
            bill = await conn.fetchrow(sql.GET_BILL, req.bill_id)
            if bill is None:
                raise ApplicationError(f"no bill {req.bill_id}", non_retryable=True)
            return bill_ref(bill, await load_state(conn, bill))

    @activity.defn
    async def record_attempt(self, req: RecordAttemptInput) -> BillRef:
        """Record a try and, when it captured money, its ledger entry: once per attempt key."""
        out = req.outcome
        status = {"no_method": "failed", "not_due": "failed"}.get(out.status, out.status)
        async with self.pool.acquire() as conn, conn.transaction():
            bill = await conn.fetchrow(sql.GET_BILL_FOR_UPDATE, req.bill_id)
            assert bill is not None
            changed = None
            if out.status != "not_due":
                changed = await conn.fetchval(
                    sql.UPSERT_ATTEMPT,
                    out.idempotency_key,
                    req.bill_id,
                    status,
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
            if out.status == "succeeded" and out.gateway_reference:
                _, reversed_ = await record_capture(
                    conn,
                    bill,
                    reference=out.gateway_reference,
                    amount=out.amount,
                    currency=out.currency,
                    memo=f"{out.method} authorization {out.authorization_code}",
                    method=out.method,
                )
            if status == "failed" and changed is not None:
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

    @activity.defn
    async def record_payment(self, req: PaymentReceivedInput) -> CaptureRecorded:
        """A capture found outside the charge saga (late webhook, reconciliation): once."""
        async with self.pool.acquire() as conn, conn.transaction():
            bill = await conn.fetchrow(sql.GET_BILL_FOR_UPDATE, req.bill_id)
            if bill is None:
                raise ApplicationError(f"no bill {req.bill_id}", non_retryable=True)
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

    @activity.defn
    async def write_off(self, req: WriteOffInput) -> BillRef:
        """Dunning exhausted: the amount still due becomes a write-off; the bill uncollectible."""
        async with self.pool.acquire() as conn, conn.transaction():
            bill = await conn.fetchrow(sql.GET_BILL_FOR_UPDATE, req.bill_id)
            assert bill is not None
            state = await load_state(conn, bill)
            if can_write_off(state):
                await sql.add_entry(
                    conn,
                    key=f"written_off-{bill['id']}",
                    bill_id=bill["id"],
                    customer_id=bill["customer_id"],
                    kind=EntryKind.WRITTEN_OFF.value,
                    amount=state.amount_due,
                    currency=bill["currency"],
                    memo=req.reason,
                )
                state = await load_state(conn, bill)
                await emit_bill(conn, EventType.BILL_UNCOLLECTIBLE, bill["id"], reason=req.reason)
            return bill_ref(bill, state)

    @activity.defn
    async def record_saga_note(self, req: SagaNote) -> None:
        await self.pool.execute(
            sql.INSERT_SAGA_NOTE,
            req.workflow_id,
            req.customer_id,
            req.bill_id,
            req.step,
            req.message,
            req.idempotency_key,
        )
