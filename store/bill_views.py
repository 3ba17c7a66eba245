"""Bills as the API and their events show them: lines, figures derived from the ledger,
attempts. A bill's state is read here only, folded by `billing.ledger.bill_state`."""

from __future__ import annotations

from typing import Any

import asyncpg

from billing.events import EventType
from billing.ledger import BillState, EntryKind, LedgerEntry, bill_state
from billing.money import format_money
from store import bills as sql
from store.db import Conn
from store.outbox import emit


async def load_state(conn: Conn, bill: asyncpg.Record) -> BillState:
    """The bill's state as its ledger says now (`bill` is a row of `store.bills`)."""
    rows = await conn.fetch(sql.BILL_ENTRIES, bill["id"])
    entries = [LedgerEntry(kind=EntryKind(r["kind"]), amount=r["amount"]) for r in rows]
    return bill_state(bill["total"], entries)


async def bill_with_state(conn: Conn, bill_id: str) -> tuple[asyncpg.Record, BillState] | None:
    """The bill's row and its state, figures as exact Decimals; None: no such bill."""
    bill = await conn.fetchrow(sql.GET_BILL, bill_id)
    if bill is None:
        return None
    return bill, await load_state(conn, bill)


async def emit_bill(conn: Conn, kind: EventType, bill_id: str, **extra: Any) -> None:
    """The outbox event of a bill change, in the change's transaction: the bill as the API
    shows it, after the change."""
    view = await bill_view(conn, bill_id)
    assert view is not None
    await emit(conn, type=kind, customer_id=view["customer_id"], data={**view, **extra})


async def bill_view(conn: Conn, bill_id: str) -> dict[str, Any] | None:
    """One bill with `amount_paid`, `amount_refunded` and `status` derived from its ledger."""
    bill = await conn.fetchrow(sql.GET_BILL, bill_id)
    if bill is None:
        return None
    return await _view(conn, bill)


async def customer_bill_views(conn: Conn, customer_id: str) -> list[dict[str, Any]]:
    return [await _view(conn, b) for b in await conn.fetch(sql.LIST_CUSTOMER_BILLS, customer_id)]


async def _view(conn: Conn, bill: asyncpg.Record) -> dict[str, Any]:
    state = await load_state(conn, bill)
    currency = bill["currency"]
    attempts = await conn.fetch(sql.BILL_ATTEMPTS, bill["id"])
    return {
        "id": bill["id"],
        "customer_id": bill["customer_id"],
        "period": bill["period"],
        "kind": bill["kind"],
        "tier": bill["tier"],
        "currency": currency,
        "lines": bill["lines"],
        "subtotal": format_money(bill["subtotal"], currency),
        "tax": format_money(bill["tax"], currency),
        "total": format_money(bill["total"], currency),
        "status": state.status.value,
        "amount_paid": format_money(state.amount_paid, currency),
        "amount_refunded": format_money(state.amount_refunded, currency),
        "amount_due": format_money(state.amount_due, currency),
        "refundable": format_money(state.refundable, currency),
        "void_reason": bill["void_reason"],
        "workflow_id": bill["workflow_id"],
        "created_at": bill["created_at"].isoformat(),
        "attempts": [
            {
                "at": a["at"].isoformat(),
                "status": a["status"],
                "method": a["method"],
                "gateway_reference": a["gateway_reference"],
                "authorization_code": a["authorization_code"],
                "decline_code": a["decline_code"],
                "message": a["message"],
            }
            for a in attempts
        ],
    }
