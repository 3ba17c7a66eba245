"""Outbound webhooks when everything goes wrong at once: every event still arrives.

The receiver is down at first, then slow and answering 500 to some requests, and the
worker (a real `python worker.py` subprocess, restarted by the supervisor) is SIGKILLed
while deliveries are in flight. Every event committed is delivered, a duplicate carries
the same `webhook-id` and body, and each customer's `sequence` runs 1..n without a gap.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import defaultdict

import pytest

from store.outbox import emit
from tests.integration.webhook_receiver import Receiver

from .polling import until
from .stack import fault_stack

CUSTOMERS = 8
EXTRA_EVENTS = 4  # per customer, beside its customer.created


@pytest.mark.chaos
async def test_worker_killed_during_delivery_loses_nothing(fault_servers, fault_root, figures):
    receiver = Receiver(status=lambda n: 500 if n % 3 == 0 else 200, delay_s=0.2)
    settings = {"webhook_retry_schedule": "300ms,1s,2s,5s,10s,20s", "webhook_timeout": "2s"}
    async with fault_stack(fault_servers, fault_root / "webhook-kill", **settings) as stack:
        made = await stack.api.post(
            "/v1/webhook-endpoints", json={"url": receiver.url}, headers=stack.auth
        )
        assert made.status_code == 201, made.text
        endpoint = made.json()
        customers = []
        for _ in range(CUSTOMERS):
            body = {"name": "Chaos", "email": f"{uuid.uuid4().hex[:8]}@example.com"}
            answer = await stack.api.post("/v1/customers", json=body, headers=stack.auth)
            customers.append(answer.json()["id"])
        for i in range(EXTRA_EVENTS):
            for customer_id in customers:
                async with stack.pool.acquire() as conn, conn.transaction():
                    await emit(conn, type="bill.created", customer_id=customer_id, data={"i": i})
        await asyncio.sleep(1.5)  # the receiver is down: attempts are refused
        began = time.monotonic()
        await receiver.start()
        try:

            async def some_arrived() -> bool:
                return len(receiver.received) >= 5

            await until(some_arrived, 60, every=0.02)
            await stack.procs.kill_worker()  # mid-delivery: requests are open
            await stack.procs.wait_worker_polling()

            async def all_delivered() -> bool:
                pending = await stack.pool.fetchval(
                    "SELECT count(*) FROM events e WHERE e.customer_id = ANY($1::text[])"
                    " AND NOT EXISTS (SELECT 1 FROM webhook_delivery_states s WHERE"
                    " s.event_id = e.id AND s.endpoint_id = $2 AND s.status = 'delivered')",
                    customers,
                    endpoint["id"],
                )
                return pending == 0

            await until(all_delivered, 180, every=0.2)
        finally:
            await receiver.stop()
        delivered_s = time.monotonic() - began
        events = await stack.pool.fetch(
            "SELECT id, customer_id, sequence FROM events WHERE customer_id = ANY($1::text[])",
            customers,
        )
    assert len(events) == CUSTOMERS * (1 + EXTRA_EVENTS)
    by_id = {}
    for got in receiver.received:
        body = got.verify(endpoint["secret"])
        assert got.headers["webhook-id"] == body["id"]
        by_id.setdefault(body["id"], set()).add(got.body)
    assert set(by_id) == {e["id"] for e in events}  # every event arrived
    assert all(len(bodies) == 1 for bodies in by_id.values())  # duplicates are the same
    sequences: dict[str, list[int]] = defaultdict(list)
    for e in events:
        sequences[e["customer_id"]].append(e["sequence"])
    for seen in sequences.values():
        assert sorted(seen) == list(range(1, 2 + EXTRA_EVENTS))
    figures(
        events=len(events),
        requests=len(receiver.received),
        duplicates=len(receiver.received) - len(by_id),
        worker_restarts=stack.procs.worker_restarts,
        delivered_s=round(delivered_s, 1),
    )
