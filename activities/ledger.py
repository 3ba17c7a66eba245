"""Activities over the ledger: issue, void, record captures, write off, note saga steps.

Thin adapters: the figures come from the pure domain (`billing.bills`, `billing.ledger`);
issuing lives in `activities.issuing`, captures in `activities.captures`; every write is
idempotent by its key.
"""

from __future__ import annotations

from decimal import Decimal

import asyncpg
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.ledger_messages import (
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
from billing.catalog import PriceCatalog
from billing.events import EventType
from billing.ledger import EntryKind, can_void, can_write_off
from store import bills as sql
from store.bill_views import emit_bill, load_state

from . import captures, issuing
from .bill_ref import bill_ref


class LedgerActivities:
    """Postgres-side steps of the sagas; built once with the pool and the price catalog."""

    def __init__(self, pool: asyncpg.Pool, catalog: PriceCatalog) -> None:
        self.pool = pool
        self.catalog = catalog

    @activity.defn
    async def issue_cycle_bill(self, req: IssueCycleBillInput) -> IssueCycleBillResult:
        """Build and store the period's bill once; a second call returns the first."""
        async with self.pool.acquire() as conn, conn.transaction():
            return await issuing.issue_cycle(conn, self.catalog, req)

    @activity.defn
    async def issue_upgrade_bill(self, req: IssueUpgradeBillInput) -> BillRef:
        """The prorated base-fee difference for the rest of the month, issued once per key."""
        async with self.pool.acquire() as conn, conn.transaction():
            return await issuing.issue_upgrade(conn, self.catalog, req)

    @activity.defn
    async def void_bill(self, req: VoidBillInput) -> None:
        """Compensation: void the bill the key names, if it exists and `can_void` allows it."""
        async with self.pool.acquire() as conn, conn.transaction():
            bill = await conn.fetchrow(sql.FIND_BILL_BY_KEY, req.idempotency_key)
            if bill is None:
                return
            bill = await conn.fetchrow(sql.GET_BILL_FOR_UPDATE, bill["id"])
            assert bill is not None
            # A bill holding captured money, already void, or paid (a 0.00 bill is paid
            # when issued) stays as it is.
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
        async with self.pool.acquire() as conn, conn.transaction():
            return await captures.record_attempt(conn, req)

    @activity.defn
    async def record_payment(self, req: PaymentReceivedInput) -> CaptureRecorded:
        """A capture found outside the charge saga (late webhook, reconciliation): once."""
        async with self.pool.acquire() as conn, conn.transaction():
            recorded = await captures.record_payment(conn, req)
        if recorded is None:
            raise ApplicationError(f"no bill {req.bill_id}", non_retryable=True)
        return recorded

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
