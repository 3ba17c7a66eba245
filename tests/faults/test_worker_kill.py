"""The worker is SIGKILLed during a billing run; a new one finishes it, nothing lost or doubled.

The worker is a real `python worker.py` subprocess under the same supervisor as
`make run`, which starts it again after each kill. Activities that the dead worker held
are retried by Temporal once their start-to-close timeout passes, with the same
idempotency keys, so a capture that happened just before the kill is found, not repeated.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from .checks import nothing_lost_or_doubled
from .plans import mix
from .servers import FaultServers
from .stack import FaultStack, fault_stack


async def _kill_when(stack: FaultStack, bills: int, within: float) -> float:
    """SIGKILL the worker once `bills` bills exist; returns the kill's monotonic time."""
    await stack.wait_bills(bills, within)
    await stack.procs.kill_worker()
    return time.monotonic()


async def _refund_some(stack: FaultStack, n: int) -> list[str]:
    """Partial refunds (1.00) on the first n paid card bills; returns their workflow ids."""
    rows = await stack.pool.fetch(
        """SELECT b.id FROM bills b JOIN ledger_entries e ON e.bill_id = b.id
           WHERE e.kind = 'captured' ORDER BY b.id LIMIT $1::int""",
        n,
    )
    started = []
    for row in rows:
        answer = await stack.api.post(
            f"/v1/bills/{row['id']}/refunds",
            json={"amount": "1.00", "reason": "goodwill"},
            headers={**stack.auth, "Idempotency-Key": f"chaos-{row['id']}"},
        )
        assert answer.status_code == 202, answer.text
        started.append(answer.json()["workflow_id"])
    return started


async def _run(
    servers: FaultServers, root: Path, figures, *, customers: int, kills_at: list[int],
    refunds: int, kill_during_refunds: bool, within: float,
) -> None:  # fmt: skip
    async with fault_stack(servers, root) as stack:
        plans = mix(customers)
        await stack.create_customers(plans)
        await stack.record_usage(stack.customers)
        began = time.monotonic()
        await stack.start_billing_run()
        kills = []
        for at in kills_at:
            kills.append(await _kill_when(stack, at, within))
            await stack.procs.wait_worker_polling()
        await stack.wait_bills(customers, within)
        await stack.wait_quiet(within)
        billed_s = time.monotonic() - began
        refund_ids = await _refund_some(stack, refunds)
        if kill_during_refunds:
            await asyncio.sleep(0.3)
            await stack.procs.kill_worker()
            await stack.procs.wait_worker_polling()
        await stack.wait_quiet(within)
        counts = await nothing_lost_or_doubled(stack)
        refunded = await stack.pool.fetchval(
            "SELECT count(*) FROM ledger_entries WHERE kind = 'refunded'"
        )
        assert refunded == len(refund_ids)
        figures(
            customers=customers,
            kills=len(kills) + int(kill_during_refunds),
            worker_restarts=stack.procs.worker_restarts,
            run_seconds=round(billed_s, 1),
            after_last_kill_seconds=round(time.monotonic() - kills[-1], 1) if kills else None,
            refunds=refunded,
            **counts,
        )
        assert stack.procs.worker_restarts == len(kills) + int(kill_during_refunds)


async def test_worker_killed_once_during_a_small_billing_run(fault_servers, fault_root, figures):
    await _run(
        fault_servers, fault_root / "kill-small", figures,
        customers=30, kills_at=[10], refunds=3, kill_during_refunds=False, within=150,
    )  # fmt: skip


@pytest.mark.chaos
async def test_worker_killed_three_times_during_a_run_of_500(fault_servers, fault_root, figures):
    await _run(
        fault_servers, fault_root / "kill-500", figures,
        customers=500, kills_at=[60, 250], refunds=25, kill_during_refunds=True, within=900,
    )  # fmt: skip
