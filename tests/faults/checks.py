"""After every fault: nothing lost, nothing doubled, nothing stuck.

- every customer has exactly one cycle bill, in the final status its payment path allows;
- the books match the gateway (tests/books.py): per bill, the simulator's captures and
  refunds are the ledger's, one for one, and no bill captured more often than allowed;
- per bill, ledger captured - refunded == amount_paid - amount_refunded the API shows;
- the revenue report closes: billed == collected + outstanding + written off;
- all usage recorded for the period is on the bills;
- no workflow on the test's task queue is still open, none closed other than completed.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from tests.books import assert_books_match_gateway

from .plans import PERIOD
from .stack import FaultStack

_LEDGER = """
SELECT b.id, b.customer_id, b.total,
       coalesce(sum(e.amount) FILTER (WHERE e.kind = 'captured'), 0) AS captured,
       coalesce(sum(e.amount) FILTER (WHERE e.kind = 'refunded'), 0) AS refunded
FROM bills b LEFT JOIN ledger_entries e ON e.bill_id = b.id
WHERE b.kind = 'cycle' AND b.period = $1::text
GROUP BY b.id"""


async def _bills_shown(stack: FaultStack, ids: list[str]) -> dict[str, dict[str, Any]]:
    gate = asyncio.Semaphore(8)

    async def one(bill_id: str) -> dict[str, Any]:
        async with gate:
            answer = await stack.api.get(f"/v1/bills/{bill_id}", headers=stack.auth)
            assert answer.status_code == 200, answer.text
            shown: dict[str, Any] = answer.json()
            return shown

    return {b["id"]: b for b in await asyncio.gather(*(one(i) for i in ids))}


async def nothing_lost_or_doubled(
    stack: FaultStack, *, captures_allowed: Mapping[str, int] | None = None
) -> dict[str, int]:
    """Assert every invariant of the module docstring; returns counts for the figures.

    `captures_allowed`: bills whose path may capture them more than once (an overpayment).
    """
    assert await stack.open_workflows() == [], "a workflow is stuck"
    assert await stack.closed_not_completed() == []
    # The stack's database is its own: every bill in it, not only this period's cycle bills.
    await assert_books_match_gateway(stack.pool, stack.sim, captures_allowed=captures_allowed)
    rows = await stack.pool.fetch(_LEDGER, PERIOD)
    by_customer = {r["customer_id"]: r for r in rows}
    expected = {c.id: c.plan.expected for c in stack.customers}
    assert len(rows) == len(by_customer) == len(expected), "a bill is missing or doubled"
    assert set(by_customer) == set(expected)
    shown = await _bills_shown(stack, [r["id"] for r in rows])
    statuses: dict[str, int] = defaultdict(int)
    for row in rows:
        bill = shown[row["id"]]
        statuses[bill["status"]] += 1
        assert bill["status"] == expected[row["customer_id"]], (bill["id"], bill["attempts"])
        shown_net = Decimal(bill["amount_paid"]) - Decimal(bill["amount_refunded"])
        assert row["captured"] - row["refunded"] == shown_net, row["id"]
        if bill["status"] == "paid":
            assert row["captured"] == row["total"]
    await _report_closes(stack, rows)
    await _usage_all_billed(stack)
    return {"bills": len(rows), **statuses}


async def _report_closes(stack: FaultStack, rows: list[Any]) -> None:
    answer = await stack.api.get(
        "/v1/reports/revenue", params={"period": PERIOD}, headers=stack.auth
    )
    assert answer.status_code == 200, answer.text
    report = {k: v for k, v in answer.json().items() if isinstance(v, str)}
    money = {k: Decimal(v) for k, v in report.items() if k not in ("period", "currency")}
    assert money["billed"] == money["collected"] + money["outstanding"] + money["written_off"]
    assert money["collected"] == sum((r["captured"] for r in rows), Decimal(0))
    assert money["refunded"] == sum((r["refunded"] for r in rows), Decimal(0))
    assert money["billed"] == sum((r["total"] for r in rows), Decimal(0))


async def _usage_all_billed(stack: FaultStack) -> None:
    recorded = await stack.pool.fetchval(
        "SELECT coalesce(sum(quantity), 0) FROM usage_events WHERE period = $1::text", PERIOD
    )
    billed = await stack.pool.fetchval(
        """SELECT coalesce(sum((line->>'quantity')::numeric), 0)
           FROM bills, jsonb_array_elements(lines) AS line
           WHERE kind = 'cycle' AND period = $1::text
             AND line->>'kind' IN ('api_call', 'llm_tokens', 'agent_execution')""",
        PERIOD,
    )
    assert recorded == billed, f"usage recorded {recorded}, billed {billed}"
