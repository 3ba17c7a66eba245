"""The Temporal server stops mid-run and starts again on its kept SQLite state file.

Workflows that were running are in that file: when the server is back, the worker (which
reconnects, or is restarted by its supervisor if it gave up) carries every saga on from
where its history stands. While the server is away the API answers 503, never 500.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from .checks import nothing_lost_or_doubled
from .plans import PERIOD, mix
from .stack import fault_stack


async def _probe_while_down(stack, seconds: float) -> tuple[dict[int, int], float]:
    """Rounds of start-a-workflow, read-a-workflow and health requests, sent side by side,
    while Temporal is away. Returns how many answers had each status, and the slowest."""
    seen: dict[int, int] = {}
    slowest = 0.0
    cid = stack.customers[0].id
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds

    async def send(method: str, path: str, body: object) -> None:
        nonlocal slowest
        sent = loop.time()
        answer = await stack.api.request(method, path, json=body, headers=stack.auth)
        slowest = max(slowest, loop.time() - sent)
        seen[answer.status_code] = seen.get(answer.status_code, 0) + 1
        if answer.status_code == 503 and path != "/healthz":
            assert answer.json()["error"]["code"] == "dependency_unavailable"

    while loop.time() < end:
        await asyncio.gather(
            send("POST", f"/v1/customers/{cid}/billing-cycles", {"period": PERIOD}),
            send("GET", f"/v1/workflows/bill-{cid}-{PERIOD}", None),
            send("GET", "/healthz", None),
        )
        await asyncio.sleep(0.2)
    return seen, slowest


async def _restart_during_run(
    fault_servers, root, figures, *, customers: int, at: int, down_s: float, within: float
) -> None:
    async with fault_stack(fault_servers, root) as stack:
        await stack.create_customers(mix(customers))
        await stack.record_usage(stack.customers)
        await stack.start_billing_run()
        await stack.wait_bills(at, within)
        db = fault_servers.temporal_db
        stopping = time.monotonic()
        await fault_servers.stop_temporal()
        stopped = time.monotonic()
        assert db.stat().st_size > 0  # the state file is kept
        statuses, slowest = await _probe_while_down(stack, down_s)
        restart_s = await fault_servers.start_temporal()
        back = time.monotonic()
        quiet_s = await stack.wait_quiet(within)
        counts = await nothing_lost_or_doubled(stack)
        figures(
            customers=customers,
            bills_before_stop=at,
            stop_seconds=round(stopped - stopping, 1),
            down_seconds=round(back - stopped, 1),
            slowest_answer_while_down_seconds=round(slowest, 1),
            server_start_seconds=round(restart_s, 1),
            finished_after_restart_seconds=round(quiet_s, 1),
            worker_restarts=stack.procs.worker_restarts,
            api_statuses_while_down=statuses,
            **counts,
        )
        assert 500 not in statuses
        assert statuses.get(503, 0) > 0


async def test_temporal_restarted_on_its_state_file_during_a_run(
    fault_servers, fault_root, figures
):
    await _restart_during_run(
        fault_servers, fault_root / "temporal-small", figures,
        customers=16, at=5, down_s=3.0, within=120,
    )  # fmt: skip


@pytest.mark.chaos
async def test_temporal_down_for_twenty_seconds_during_a_run_of_200(
    fault_servers, fault_root, figures
):
    await _restart_during_run(
        fault_servers, fault_root / "temporal-200", figures,
        customers=200, at=60, down_s=20.0, within=600,
    )  # fmt: skip
