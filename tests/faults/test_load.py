"""The API under a loopback load generator while a billing run's workflows run.

Bounded in requests and in seconds, with a fixed number in flight. Usage singles and
batches (a tenth of them resent, as a client retrying after a lost answer does) mixed
with reads. Afterwards: no 5xx at all, every event the API said it accepted is a row in
Postgres and no row exists that it did not accept, and the billing run is intact.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from typing import Any

import pytest

from .checks import nothing_lost_or_doubled
from .plans import Plan, mix
from .stack import FaultStack, fault_stack

_KINDS = (("api_call", 3), ("llm_tokens", 400), ("agent_execution", 1))
_LOADED = Plan("starter", None, None, "not billed")


class Load:
    """What was sent and what the API answered.

    A resend repeats an event already accepted (a client that lost the answer), so every
    fresh event id is sent once and the accepted set is exact, not a guess.
    """

    def __init__(self, stack: FaultStack, customer_ids: list[str], seed: int) -> None:
        self.stack = stack
        self.customer_ids = customer_ids
        self.rng = random.Random(seed)
        self.fresh = 0
        self.accepted: dict[str, dict[str, Any]] = {}
        self.statuses: Counter[int] = Counter()
        self.latencies: list[float] = []
        self.errors: list[str] = []

    def _event(self) -> dict[str, Any]:
        if self.accepted and self.rng.random() < 0.1:
            return self.rng.choice(list(self.accepted.values()))
        self.fresh += 1
        kind, most = self.rng.choice(_KINDS)
        customer_id = self.rng.choice(self.customer_ids)
        quantity = self.rng.randint(1, most)
        return {"event_id": f"load-{self.fresh}", "customer_id": customer_id, "kind": kind,
                "quantity": quantity}  # fmt: skip

    async def _single(self) -> int:
        event = self._event()
        again = event["event_id"] in self.accepted
        answer = await self.stack.api.post("/v1/usage", json=event, headers=self.stack.auth)
        if answer.status_code in (200, 201):
            if answer.json() != {"recorded": not again, "duplicate": again}:
                self.errors.append(f"single {event['event_id']}: {answer.text}")
            self.accepted[event["event_id"]] = event
        return answer.status_code

    async def _batch(self) -> int:
        events = {e["event_id"]: e for e in (self._event() for _ in range(20))}
        answer = await self.stack.api.post(
            "/v1/usage/batch", json={"events": list(events.values())}, headers=self.stack.auth
        )
        if answer.status_code == 200:
            body = answer.json()
            rejected = {r["event_id"] for r in body["rejected"]}
            fresh = [i for i in events if i not in self.accepted and i not in rejected]
            resent = len(events) - len(rejected) - len(fresh)
            counted = (body["accepted"], body["duplicates"])
            if counted != (len(fresh), resent):
                self.errors.append(f"batch counted {counted}, expected {(len(fresh), resent)}")
            self.accepted.update((i, events[i]) for i in fresh)
        return answer.status_code

    async def _read(self) -> int:
        cid = self.rng.choice(self.customer_ids)
        path = self.rng.choice([f"/v1/customers/{cid}", f"/v1/customers/{cid}/bills", "/healthz"])
        answer = await self.stack.api.get(path, headers=self.stack.auth)
        return answer.status_code

    async def one(self) -> None:
        roll = self.rng.random()
        began = time.monotonic()
        status = await (self._single() if roll < 0.5 else self._batch() if roll < 0.8
                        else self._read())  # fmt: skip
        self.latencies.append(time.monotonic() - began)
        self.statuses[status] += 1
        if status >= 500:
            self.errors.append(f"HTTP {status}")

    async def run(self, requests: int, seconds: float, in_flight: int) -> float:
        """At most `requests`, stopping early after `seconds`; returns the seconds taken."""
        queue: asyncio.Queue[int] = asyncio.Queue()
        for i in range(requests):
            queue.put_nowait(i)
        deadline = time.monotonic() + seconds

        async def worker() -> None:
            while time.monotonic() < deadline:
                try:
                    queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                await self.one()

        began = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(in_flight)))
        return time.monotonic() - began


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


async def _load_during_a_run(fault_servers, root, figures, *, billed: int, requests: int,
                             seconds: float, in_flight: int) -> None:  # fmt: skip
    async with fault_stack(fault_servers, root) as stack:
        await stack.create_customers(mix(billed))
        await stack.record_usage(stack.customers)
        # Joined this month: the run for last month does not bill them.
        heavy = await stack.create_customers([_LOADED] * 10, track=False, started_now=True)
        await stack.start_billing_run()
        load = Load(stack, [c.id for c in heavy], seed=7)
        took = await load.run(requests, seconds, in_flight)
        await stack.wait_quiet(180)
        rows = await stack.pool.fetch(
            "SELECT event_id FROM usage_events WHERE event_id LIKE 'load-%'"
        )
        in_postgres = {r["event_id"] for r in rows}
        assert load.errors == []
        assert not [s for s in load.statuses if s >= 500], load.statuses
        assert in_postgres == set(load.accepted), (len(in_postgres), len(load.accepted))
        counts = await nothing_lost_or_doubled(stack)
        done = sum(load.statuses.values())
        figures(
            requests=done,
            seconds=round(took, 1),
            requests_per_second=round(done / took, 1),
            in_flight=in_flight,
            p50_ms=round(_pct(load.latencies, 0.5) * 1000, 1),
            p99_ms=round(_pct(load.latencies, 0.99) * 1000, 1),
            statuses=dict(load.statuses),
            events_accepted=len(load.accepted),
            events_fresh=load.fresh,
            **counts,
        )


async def test_load_while_a_billing_run_runs(fault_servers, fault_root, figures):
    await _load_during_a_run(
        fault_servers, fault_root / "load-small", figures,
        billed=16, requests=1500, seconds=20, in_flight=12,
    )  # fmt: skip


@pytest.mark.chaos
async def test_heavier_load_while_a_billing_run_of_200_runs(fault_servers, fault_root, figures):
    await _load_during_a_run(
        fault_servers, fault_root / "load-200", figures,
        billed=200, requests=20_000, seconds=120, in_flight=32,
    )  # fmt: skip
