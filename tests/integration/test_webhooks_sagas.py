"""Each money flow tells the seller's endpoint what happened, signed and in order.

Real HTTP receiver on 127.0.0.1, real Postgres, Temporal and the gateway simulator: a
billing cycle, an upgrade, a dunning path and a refund each deliver their events, every
one verified with the `standardwebhooks` library and the endpoint's secret, with the
customer's `sequence` rising without a gap.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from temporalio.client import Client

from .harness import LiveStack
from .test_sagas_live import bill_period, customer
from .test_webhooks_out import register
from .webhook_receiver import Receiver, eventually, receiving, webhook_stack


@pytest.fixture
async def stack(settings, db_pool, temporal_client, tmp_path) -> AsyncIterator[LiveStack]:
    async with webhook_stack(
        settings, db_pool, temporal_client, tmp_path, dunning_schedule="1s,1s,1s"
    ) as live:
        yield live


def verified(receiver: Receiver, secret: str, customer_id: str) -> list[dict[str, Any]]:
    """Every event of the customer the receiver got, verified, deduplicated by webhook-id."""
    seen: dict[str, dict[str, Any]] = {}
    for got in receiver.received:
        body = got.verify(secret)
        if body["customer_id"] == customer_id:
            seen[got.headers["webhook-id"]] = body
    return sorted(seen.values(), key=lambda e: e["sequence"])


async def events_until(
    receiver: Receiver, secret: str, customer_id: str, last: str, count: int
) -> list[dict[str, Any]]:
    """The customer's events once `count` have arrived, `last` among them, in sequence order.

    Deliveries are independent (a slow one never holds up the next), so they may arrive in
    any order; the per-customer `sequence` is what orders them, without a gap.
    """

    async def arrived() -> list[dict[str, Any]] | None:
        events = verified(receiver, secret, customer_id)
        done = len(events) >= count and any(e["type"] == last for e in events)
        return events if done else None

    events: list[dict[str, Any]] = await eventually(arrived, within_s=30)
    sequences = [e["sequence"] for e in events]
    assert sequences == list(range(1, len(events) + 1)), sequences  # no gap
    return events


async def test_a_paid_billing_cycle_says_created_then_paid(stack, temporal_client: Client):
    async with receiving() as receiver:
        endpoint = await register(stack, receiver.url, [])
        c = await customer(stack, tier="starter", token="tok_success")
        bill = await bill_period(stack, temporal_client, c["id"])
        events = await events_until(receiver, endpoint["secret"], c["id"], "bill.paid", 3)
    types = [e["type"] for e in events]
    assert types == ["customer.created", "bill.created", "bill.paid"]
    paid = events[-1]["data"]
    assert (paid["id"], paid["status"], paid["amount_paid"]) == (bill["id"], "paid", "10.00")


async def test_an_upgrade_says_tier_changed_created_paid(stack, temporal_client: Client):
    async with receiving() as receiver:
        endpoint = await register(stack, receiver.url, [])
        c = await customer(stack, tier="starter", token="tok_success")
        up = await stack.api.post(
            f"/v1/customers/{c['id']}/upgrade", json={"tier": "professional"}, headers=stack.auth
        )
        await temporal_client.get_workflow_handle(up.json()["workflow_id"]).result()
        events = await events_until(receiver, endpoint["secret"], c["id"], "bill.paid", 4)
    types = [e["type"] for e in events]
    assert types == ["customer.created", "customer.tier_changed", "bill.created", "bill.paid"]
    changed = events[1]["data"]
    assert (changed["previous_tier"], changed["tier"]) == ("starter", "professional")


async def test_dunning_says_failed_each_try_then_uncollectible(stack, temporal_client: Client):
    async with receiving() as receiver:
        endpoint = await register(stack, receiver.url, [])
        c = await customer(stack, tier="starter", token="tok_insufficient_funds")
        await bill_period(stack, temporal_client, c["id"])
        events = await events_until(
            receiver, endpoint["secret"], c["id"], "customer.tier_changed", 8
        )
    types = [e["type"] for e in events]
    assert types[:2] == ["customer.created", "bill.created"]
    assert types.count("bill.payment_failed") == 4  # first try + three dunning slots
    assert types[-2:] == ["bill.uncollectible", "customer.tier_changed"]
    failures = [e["data"] for e in events if e["type"] == "bill.payment_failed"]
    assert failures[0]["decline_code"] == "insufficient_funds"
    # Each says when dunning tries next; the last one, that it will not.
    assert all(f["next_try_at"] for f in failures[:-1])
    assert failures[-1]["next_try_at"] is None
    assert "token" not in str(events)


async def test_a_refund_says_refunded(stack, temporal_client: Client):
    async with receiving() as receiver:
        endpoint = await register(stack, receiver.url, ["bill.refunded"])
        c = await customer(stack, tier="starter", token="tok_success")
        bill = await bill_period(stack, temporal_client, c["id"])
        started = await stack.api.post(
            f"/v1/bills/{bill['id']}/refunds",
            json={"amount": "4.00", "reason": "goodwill"},
            headers=stack.auth,
        )
        await temporal_client.get_workflow_handle(started.json()["workflow_id"]).result()

        async def refunded() -> list[dict[str, Any]]:
            got = [r.verify(endpoint["secret"]) for r in receiver.received]
            return [e for e in got if e["customer_id"] == c["id"]]

        (event,) = await eventually(refunded, within_s=30)
        await asyncio.sleep(0.5)  # nothing else of this customer: the endpoint filters types
        assert len(await refunded()) == 1
    assert event["type"] == "bill.refunded"
    assert (event["data"]["amount_refunded"], event["data"]["refund"]["amount"]) == (
        "4.00",
        "4.00",
    )
