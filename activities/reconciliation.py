"""Activities of reconciliation: read the gateway's transactions, the ledger's side, the report.

Thin: the verdicts come from `billing.reconciliation`. Recording a found capture is the
PaymentReceivedWorkflow's job; recording a found refund is here, in one transaction per
refund, idempotent by the refund's gateway reference.
"""

from __future__ import annotations

import asyncpg
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.reconciliation_messages import (
    Fixed,
    ListTransactionsInput,
    PlanPageInput,
    RecordRefundsInput,
    RefundsRecorded,
    ReportSave,
)
from billing.errors import BillingError, DependencyUnavailable
from billing.events import EventType
from billing.ledger import EntryKind
from billing.payments import PaymentGateway, TransactionPage
from billing.reconciliation import (
    LedgerFacts,
    LedgerMovement,
    PagePlan,
    RefundToRecord,
    Unresolved,
    plan_page,
    references_of,
)
from store import bills as bills_sql
from store import reconciliations as sql
from store.db import Conn
from store.outbox import emit

from .gateway import GATEWAY_REFUSED, GATEWAY_UNAVAILABLE


def _log_unresolved(items: list[Unresolved]) -> None:
    for item in items:
        activity.logger.warning(
            "reconciliation: unresolved %s %s of %s %s (bill %s): %s",
            item.kind,
            item.gateway_reference,
            item.amount,
            item.currency,
            item.bill_id or "-",
            item.reason,
        )


async def load_facts(conn: Conn, references: list[str], bill_ids: list[str]) -> LedgerFacts:
    captures: dict[str, LedgerMovement] = {}
    refunds: dict[str, LedgerMovement] = {}
    for row in await conn.fetch(sql.LEDGER_MOVEMENTS, references):
        into = captures if row["kind"] == EntryKind.CAPTURED.value else refunds
        into[row["gateway_reference"]] = LedgerMovement(
            bill_id=row["bill_id"], amount=row["amount"], currency=row["currency"]
        )
    wanted = sorted({*bill_ids, *(c.bill_id for c in captures.values())})
    currencies = {r["id"]: r["currency"] for r in await conn.fetch(sql.BILL_CURRENCIES, wanted)}
    return LedgerFacts(captures=captures, refunds=refunds, bill_currencies=currencies)


async def record_refund(conn: Conn, refund: RefundToRecord, workflow_id: str) -> Fixed | None:
    """The gateway refunded and the ledger lacks it: an entry, once. None: already there.

    Against the capture's bill as the ledger holds it; a refund whose capture is not (yet)
    in the ledger is left unresolved rather than refund money the books never received.
    """
    bill_id = await conn.fetchval(sql.CAPTURED_BILL, refund.charge_reference)
    if bill_id is None:
        raise LookupError(f"the refunded charge {refund.charge_reference} is not in the ledger")
    bill = await conn.fetchrow(sql.BILL_FOR_UPDATE, bill_id)
    assert bill is not None  # a ledger entry's bill exists (foreign key)
    recorded = await bills_sql.add_entry(
        conn,
        key=f"refunded-{refund.gateway_reference}",
        bill_id=bill_id,
        customer_id=bill["customer_id"],
        kind=EntryKind.REFUNDED.value,
        amount=refund.amount,
        currency=refund.currency,
        gateway_reference=refund.gateway_reference,
        memo=f"found by reconciliation {workflow_id}",
    )
    await conn.execute(
        sql.SETTLE_RESERVATION,
        refund.idempotency_key,
        refund.gateway_reference,
        refund.charge_reference,
    )
    if await conn.fetchval(sql.RESERVATION_EXISTS, refund.idempotency_key) is None:
        await conn.execute(
            sql.INSERT_FOUND_REFUND,
            f"rf_found_{refund.gateway_reference}",
            bill_id,
            refund.amount,
            refund.currency,
            workflow_id,
            refund.gateway_reference,
            refund.charge_reference,
            refund.idempotency_key,
        )
    if not recorded:
        return None
    return Fixed(
        kind="refund",
        gateway_reference=refund.gateway_reference,
        bill_id=bill_id,
        amount=refund.amount,
        currency=refund.currency,
        charge_reference=refund.charge_reference,
    )


class ReconciliationActivities:
    def __init__(self, pool: asyncpg.Pool, gateway: PaymentGateway) -> None:
        self.pool = pool
        self.gateway = gateway

    @activity.defn
    async def list_transactions(self, req: ListTransactionsInput) -> TransactionPage:
        """One page of the gateway's charges and refunds since `req.since`, oldest first."""
        try:
            return await self.gateway.list_transactions(req.since, req.cursor, req.limit)
        except DependencyUnavailable as exc:
            raise ApplicationError(exc.message, type=GATEWAY_UNAVAILABLE) from exc
        except BillingError as exc:
            raise ApplicationError(exc.message, type=GATEWAY_REFUSED, non_retryable=True) from exc

    @activity.defn
    async def plan_page(self, req: PlanPageInput) -> PagePlan:
        """The ledger's facts for the page, and the verdict on every transaction of it."""
        references, bill_ids = references_of(req.transactions)
        async with self.pool.acquire() as conn:
            facts = await load_facts(conn, references, bill_ids)
        plan = plan_page(req.transactions, facts)
        _log_unresolved(plan.unresolved)
        return plan

    @activity.defn
    async def record_refunds(self, req: RecordRefundsInput) -> RefundsRecorded:
        """Each found refund in its own transaction; one that cannot be tied stays unresolved."""
        fixed: list[Fixed] = []
        unresolved: list[Unresolved] = []
        matched = 0
        for refund in req.refunds:
            try:
                async with self.pool.acquire() as conn, conn.transaction():
                    done = await record_refund(conn, refund, req.workflow_id)
            except LookupError as exc:
                unresolved.append(
                    Unresolved(
                        kind="refund",
                        gateway_reference=refund.gateway_reference,
                        amount=refund.amount,
                        currency=refund.currency,
                        bill_id=refund.bill_id,
                        reason=str(exc),
                    )
                )
                continue
            if done is None:
                matched += 1
            else:
                fixed.append(done)
                activity.logger.info(
                    "reconciliation: recorded refund %s of %s %s on bill %s",
                    done.gateway_reference,
                    done.amount,
                    done.currency,
                    done.bill_id,
                )
        _log_unresolved(unresolved)
        return RefundsRecorded(fixed=fixed, matched=matched, unresolved=unresolved)

    @activity.defn
    async def begin_report(self, req: ReportSave) -> None:
        """The running report, once: a row the API wrote first is left as it is."""
        await self.pool.execute(sql.BEGIN_REPORT, req.id, req.workflow_id, req.since)

    @activity.defn
    async def save_report(self, req: ReportSave) -> None:
        """Save the report; when it completes, each fix and each unresolved item becomes a
        `reconciliation.discrepancy` event, in the same transaction (so exactly once)."""
        async with self.pool.acquire() as conn, conn.transaction():
            before = await conn.fetchval(sql.REPORT_STATUS_FOR_UPDATE, req.id)
            await conn.execute(
                sql.SAVE_REPORT,
                req.id,
                req.since,
                req.status,
                req.checked,
                req.matched,
                [f.model_dump(mode="json") for f in req.fixed],
                [u.model_dump(mode="json") for u in req.unresolved],
            )
            if req.status != "completed" or before == "completed":
                return
            items = [("fixed", f.model_dump(mode="json")) for f in req.fixed] + [
                ("unresolved", u.model_dump(mode="json")) for u in req.unresolved
            ]
            for outcome, item in items:
                bill_id = item.get("bill_id")
                customer_id = (
                    await conn.fetchval(bills_sql.BILL_CUSTOMER_ID, bill_id) if bill_id else None
                )
                await emit(
                    conn,
                    type=EventType.RECONCILIATION_DISCREPANCY,
                    customer_id=customer_id,
                    data={"reconciliation_id": req.id, "finding": outcome, **item},
                )
