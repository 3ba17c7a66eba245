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
from billing.errors import RefundRefused
from billing.ledger import BillState, EntryKind, LedgerEntry, bill_state
from billing.messages import (
    BillKey,
    BillRef,
    CompleteRefundInput,
    IssueCycleBillInput,
    IssueCycleBillResult,
    IssueUpgradeBillInput,
    RecordAttemptInput,
    RefundKey,
    RefundReservation,
    ReserveRefundInput,
    SagaNote,
    VoidBillInput,
    WriteOffInput,
)
from billing.periods import period_bounds
from billing.refunds import refund_amount
from observability import metrics
from store import bills as sql
from store import tiers
from store.db import Conn

# Business refusals: retrying cannot change the answer.
REFUND_REFUSED = "RefundRefused"


def new_bill_id() -> str:
    return "bill_" + secrets.token_hex(8)


async def load_state(conn: Conn, bill: asyncpg.Record) -> BillState:
    rows = await conn.fetch(sql.BILL_ENTRIES, bill["id"])
    entries = [LedgerEntry(kind=EntryKind(r["kind"]), amount=r["amount"]) for r in rows]
    return bill_state(bill["total"], entries)


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
    )


def _trim(price: Decimal) -> Decimal:
    """numeric(20,10) reads back as 0.0010000000; show 0.001 (exact, never 1E+1)."""
    trimmed = price.normalize()
    return trimmed.quantize(Decimal(1)) if trimmed == trimmed.to_integral() else trimmed


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
            customer = await conn.fetchrow(tiers.GET_CUSTOMER, req.customer_id)
            if customer is None:
                raise ApplicationError(f"no customer {req.customer_id}", non_retryable=True)
            start, end = period_bounds(req.period)
            if customer["started_at"] >= end:
                return IssueCycleBillResult(bill=None, reason="subscription began after the period")
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
            customer = await conn.fetchrow(tiers.GET_CUSTOMER, req.customer_id)
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
            state = await load_state(conn, bill)
            if state.amount_paid > 0 or state.status.value == "void":
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
            if out.status != "not_due":
                await conn.execute(
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
            if out.status == "succeeded" and out.gateway_reference:
                # Keyed by the gateway's reference: one capture per transaction, ever.
                captured = await sql.add_entry(
                    conn,
                    key=f"captured-{out.gateway_reference}",
                    bill_id=req.bill_id,
                    customer_id=bill["customer_id"],
                    kind=EntryKind.CAPTURED.value,
                    amount=out.amount,
                    currency=out.currency,
                    gateway_reference=out.gateway_reference,
                    memo=f"{out.method} authorization {out.authorization_code}",
                )
                if captured:
                    metrics.revenue_collected(out.amount, out.currency, out.method, bill["tier"])
            return bill_ref(bill, await load_state(conn, bill))

    @activity.defn
    async def write_off(self, req: WriteOffInput) -> BillRef:
        """Dunning exhausted: the amount still due becomes a write-off; the bill uncollectible."""
        async with self.pool.acquire() as conn, conn.transaction():
            bill = await conn.fetchrow(sql.GET_BILL_FOR_UPDATE, req.bill_id)
            assert bill is not None
            state = await load_state(conn, bill)
            if state.status.value == "pending" and state.amount_due > 0:
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
            return bill_ref(bill, state)

    @activity.defn
    async def reserve_refund(self, req: ReserveRefundInput) -> RefundReservation:
        """Check the refundable amount under the bill's row lock, then reserve it.

        The lock serializes refunds per bill: two racing refunds see each other's
        reservation, so together they can never exceed what was paid.
        """
        async with self.pool.acquire() as conn, conn.transaction():
            existing = await conn.fetchrow(sql.GET_REFUND, req.refund_id)
            bill = await conn.fetchrow(sql.GET_BILL_FOR_UPDATE, req.bill_id)
            if bill is None:
                raise ApplicationError(
                    f"no bill {req.bill_id}", type=REFUND_REFUSED, non_retryable=True
                )
            reference = await conn.fetchval(sql.CAPTURE_REFERENCE, req.bill_id)
            if existing is not None:
                amount = existing["amount"]
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
                    raise ApplicationError(
                        exc.message, type=REFUND_REFUSED, non_retryable=True
                    ) from exc
                await conn.execute(
                    sql.INSERT_REFUND,
                    req.refund_id,
                    req.bill_id,
                    amount,
                    bill["currency"],
                    req.reason,
                    req.workflow_id,
                )
            return RefundReservation(
                refund_id=req.refund_id,
                bill_id=req.bill_id,
                customer_id=bill["customer_id"],
                amount=amount,
                currency=bill["currency"],
                charge_reference=reference or "",
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

    @activity.defn
    async def release_refund(self, req: RefundKey) -> None:
        """Compensation: give back a reservation that did not become a refund."""
        await self.pool.execute(sql.FINISH_REFUND, req.refund_id, "released", None)
        metrics.refund("released")

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
