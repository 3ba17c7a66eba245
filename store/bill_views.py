"""Bills as the API shows them: lines, figures derived from the ledger, attempts."""

from __future__ import annotations

from typing import Any

from billing.ledger import EntryKind, LedgerEntry, bill_state
from billing.money import format_money
from store import bills as sql
from store.db import Conn


async def bill_view(conn: Conn, bill_id: str) -> dict[str, Any] | None:
    """One bill with `amount_paid`, `amount_refunded` and `status` derived from its ledger."""
    bill = await conn.fetchrow(sql.GET_BILL, bill_id)
    if bill is None:
        return None
    return await _view(conn, bill)


async def customer_bill_views(conn: Conn, customer_id: str) -> list[dict[str, Any]]:
    return [await _view(conn, b) for b in await conn.fetch(sql.LIST_CUSTOMER_BILLS, customer_id)]


async def _view(conn: Conn, bill: Any) -> dict[str, Any]:
    entries = await conn.fetch(sql.BILL_ENTRIES, bill["id"])
    state = bill_state(
        bill["total"], [LedgerEntry(kind=EntryKind(e["kind"]), amount=e["amount"]) for e in entries]
    )
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
