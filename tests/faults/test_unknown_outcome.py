"""An unknown outcome: the gateway captures, the worker's call times out before the answer.

The simulator (a subprocess) stores the capture and then holds its answer for 12 s; the
worker's gateway client (a subprocess too) gives up after 10 s. The activity fails, its
retry asks again with the same idempotency key, and the gateway answers the first result:
one capture, one ledger entry, the bill paid.
"""

from __future__ import annotations

import time

from .checks import nothing_lost_or_doubled
from .plans import PERIOD, Plan
from .stack import fault_stack

_WORKER_GATEWAY_TIMEOUT_S = 10  # SimulatorGateway's default in worker.py
_HELD_MS = 12_000


async def test_a_capture_whose_answer_is_lost_is_charged_once(fault_servers, fault_root, figures):
    async with fault_stack(fault_servers, fault_root / "unknown") as stack:
        plan = Plan("starter", "credit_card", "tok_success", "paid")
        customers = await stack.create_customers([plan, plan, plan])
        armed = await stack.sim.post(
            "/_sim/faults", json={"delay_after_capture_ms": _HELD_MS, "count": len(customers)}
        )
        assert armed.status_code == 200
        began = time.monotonic()
        for c in customers:
            started = await stack.api.post(
                f"/v1/customers/{c.id}/billing-cycles", json={"period": PERIOD}, headers=stack.auth
            )
            assert started.status_code == 202, started.text
        await stack.wait_quiet(90)
        took = time.monotonic() - began
        counts = await nothing_lost_or_doubled(stack)
        assert counts == {"bills": 3, "paid": 3}
        charges = (await stack.sim.get("/_sim/charges")).json()["charges"]
        # One stored charge per bill: the retry found it by its key instead of charging again.
        assert len(charges) == 3
        assert len({c["idempotency_key"] for c in charges}) == 3
        worker_log = stack.procs.logs()["worker"]
        assert "gateway timed out" in worker_log  # the first try really lost its answer
        assert took > _WORKER_GATEWAY_TIMEOUT_S
        figures(bills=3, captures=3, seconds_to_paid=round(took, 1), answer_held_ms=_HELD_MS)
