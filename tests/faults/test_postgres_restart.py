"""Postgres restarts mid-run: activities retry until it is back, the run completes.

While it is away, the API answers every request that needs it with 503
`dependency_unavailable` naming Postgres, with Retry-After: never a 500, never a hang.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import pytest

from .checks import nothing_lost_or_doubled
from .plans import PERIOD, mix
from .stack import FaultStack, fault_stack


def _requests(stack: FaultStack) -> list[tuple[str, str, dict[str, str], object]]:
    """A read, a write, a customer-key request and the health check: all need Postgres."""
    c = stack.customers[0]
    mine = {"Authorization": f"Bearer {c.key}"}
    event = {"event_id": "while-down", "customer_id": c.id, "kind": "llm_tokens", "quantity": 5}
    return [
        ("GET", f"/v1/customers/{c.id}", stack.auth, None),
        ("GET", f"/v1/customers/{c.id}/bills", mine, None),
        ("POST", "/v1/usage", stack.auth, event),
        ("GET", "/v1/reports/revenue?period=" + PERIOD, stack.auth, None),
        ("GET", "/healthz", {}, None),
    ]


async def _probe(stack: FaultStack, seconds: float) -> tuple[Counter[int], float]:
    """Rounds of requests for `seconds` while Postgres is away; statuses seen, slowest answer."""
    seen: Counter[int] = Counter()
    slowest = 0.0
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while loop.time() < end:
        for method, path, headers, body in _requests(stack):
            sent = loop.time()
            answer = await stack.api.request(method, path, headers=headers, json=body)
            slowest = max(slowest, loop.time() - sent)
            seen[answer.status_code] += 1
            if path == "/healthz":
                assert answer.json()["checks"]["postgres"].startswith("down")
            elif answer.status_code == 503:
                error = answer.json()["error"]
                assert error["code"] == "dependency_unavailable"
                assert "Postgres" in error["message"], error
                assert answer.headers["Retry-After"]
        await asyncio.sleep(0.1)
    return seen, slowest


async def _restart_during_run(
    fault_servers, root, figures, *, customers: int, at: int, down_s: float, within: float
) -> None:
    async with fault_stack(fault_servers, root) as stack:
        await stack.create_customers(mix(customers))
        await stack.record_usage(stack.customers)
        await stack.start_billing_run()
        await stack.wait_bills(at, within)
        await fault_servers.stop_postgres()
        stopped = time.monotonic()
        statuses, slowest = await _probe(stack, down_s)
        start_s = await fault_servers.start_postgres()
        back = time.monotonic()
        quiet_s = await stack.wait_quiet(within)
        after = await stack.api.get(f"/v1/customers/{stack.customers[0].id}", headers=stack.auth)
        assert after.status_code == 200
        # The event refused while Postgres was away was not written.
        assert (
            await stack.pool.fetchval(
                "SELECT count(*) FROM usage_events WHERE event_id = 'while-down'"
            )
            == 0
        )
        counts = await nothing_lost_or_doubled(stack)
        figures(
            customers=customers,
            bills_before_stop=at,
            down_seconds=round(back - stopped, 1),
            server_start_seconds=round(start_s, 1),
            finished_after_restart_seconds=round(quiet_s, 1),
            api_statuses_while_down=dict(statuses),
            slowest_answer_while_down_seconds=round(slowest, 2),
            worker_restarts=stack.procs.worker_restarts,
            **counts,
        )
        assert set(statuses) == {503}, statuses


async def test_postgres_restarted_during_a_run(fault_servers, fault_root, figures):
    await _restart_during_run(
        fault_servers, fault_root / "pg-small", figures, customers=16, at=5, down_s=3, within=120
    )


@pytest.mark.chaos
async def test_postgres_down_for_a_while_during_a_run_of_200(fault_servers, fault_root, figures):
    await _restart_during_run(
        fault_servers, fault_root / "pg-200", figures, customers=200, at=60, down_s=20, within=600
    )
