"""Tier changes (issue 12) on real Postgres, Redis, Temporal and the gateway simulator.

Every change is its own request (keys from the request, not the workflow id), changes of
one customer take turns (SubscriptionWorkflow), a downgrade to free makes a customer
convertible again, and a late payment of a written-off bill gives back the tier dunning took.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import asyncpg
import pytest
from redis.asyncio import Redis
from temporalio.client import Client

from activities.subscriptions_messages import SubscriptionInput, TurnRequest
from billing.workflow_ids import auto_upgrade_id, subscription_id
from workflows.status import SagaStatus
from workflows.upgrade import UpgradeWorkflow
from workflows.upgrade_messages import UpgradeInput

from .harness import LiveStack, live_stack
from .test_sagas_live import PERIOD, bill_period, customer


@pytest.fixture
async def stack(settings, db_pool, temporal_client, tmp_path) -> AsyncIterator[LiveStack]:
    async with live_stack(
        settings, db_pool, temporal_client, tmp_path, dunning_schedule="1s,1s,1s"
    ) as live:
        yield live


async def ask(live: LiveStack, cid: str, tier: str, key: str | None = None) -> str:
    """POST the tier change; the 202's workflow id."""
    headers = live.auth | ({"Idempotency-Key": key} if key else {})
    answer = await live.api.post(
        f"/v1/customers/{cid}/upgrade", json={"tier": tier}, headers=headers
    )
    assert answer.status_code == 202, answer.text
    workflow_id: str = answer.json()["workflow_id"]
    return workflow_id


async def result(temporal: Client, workflow_id: str) -> Any:
    handle = temporal.get_workflow_handle_for(UpgradeWorkflow.run, workflow_id)
    return await asyncio.wait_for(handle.result(), timeout=60)


async def tier(live: LiveStack, cid: str) -> str:
    read = await live.api.get(f"/v1/customers/{cid}", headers=live.auth)
    return str(read.json()["tier"])


async def upgrade_bills(live: LiveStack, cid: str) -> list[dict[str, Any]]:
    bills = (await live.api.get(f"/v1/customers/{cid}/bills", headers=live.auth)).json()
    return [b for b in bills["bills"] if b["kind"] == "upgrade"]


async def cross_free_limit(live: LiveStack, cid: str) -> None:
    events = [
        {"event_id": f"ev_{uuid.uuid4().hex}", "customer_id": cid, "kind": "api_call",
         "quantity": 1}
        for _ in range(1001)
    ]  # fmt: skip
    batch = await live.api.post("/v1/usage/batch", json={"events": events}, headers=live.auth)
    assert batch.json()["accepted"] == 1001, batch.text


async def changes(pool: asyncpg.Pool, cid: str) -> list[asyncpg.Record]:
    """The customer's tier changes after its creation, with the bill each one issued."""
    return await pool.fetch(
        """SELECT tc.from_tier, tc.to_tier, tc.reason, b.lines -> 0 ->> 'description' AS line
           FROM tier_changes tc
           LEFT JOIN bills b ON b.kind = 'upgrade'
                AND b.idempotency_key = replace(tc.idempotency_key, '-change', '-bill')
           WHERE tc.customer_id = $1 ORDER BY tc.id""",
        cid,
    )


def assert_one_at_a_time(rows: list[asyncpg.Record]) -> None:
    """Each change starts where the one before ended, and its bill prices that very change
    (a saga that read the tier before another changed it would bill the wrong step)."""
    for before, after in zip(rows, rows[1:], strict=False):
        assert after["from_tier"] == before["to_tier"], rows
    for row in rows:
        if row["line"] is not None:
            assert f"{row['from_tier']} → {row['to_tier']}" in row["line"], row


@pytest.mark.parametrize(
    ("start", "steps"),
    [
        ("starter", ["professional", "starter", "professional"]),
        ("professional", ["starter", "professional", "starter"]),
    ],
)
async def test_every_manual_change_is_a_new_change(
    stack: LiveStack, temporal_client: Client, start: str, steps: list[str]
):
    c = await customer(stack, tier=start, token="tok_success")
    for step in steps:
        done = await result(temporal_client, await ask(stack, c["id"], step))
        assert (done.outcome, done.to_tier) in {("upgraded", step), ("downgraded", step)}
        assert await tier(stack, c["id"]) == step
    bills = await upgrade_bills(stack, c["id"])
    assert [b["status"] for b in bills] == ["paid"] * steps.count("professional")
    assert all(b["lines"][0]["kind"] == "proration" for b in bills)


async def test_the_same_idempotency_key_is_the_same_change(
    stack: LiveStack, temporal_client: Client, db_pool: asyncpg.Pool
):
    c = await customer(stack, tier="starter", token="tok_success")
    key = f"up-{uuid.uuid4().hex[:8]}"
    first = await ask(stack, c["id"], "professional", key)
    again = await ask(stack, c["id"], "professional", key)  # while the first runs
    run = (await temporal_client.get_workflow_handle(first).describe()).run_id
    await result(temporal_client, first)
    late = await ask(stack, c["id"], "professional", key)  # after it ended
    assert first == again == late == f"upgrade-{c['id']}-professional-{key}"
    assert (await temporal_client.get_workflow_handle(first).describe()).run_id == run
    assert [(r["from_tier"], r["to_tier"]) for r in await changes(db_pool, c["id"])] == [
        ("starter", "starter"), ("starter", "professional"),
    ]  # fmt: skip
    assert len(await upgrade_bills(stack, c["id"])) == 1


async def test_a_conversion_and_a_manual_upgrade_at_once_take_turns(
    stack: LiveStack, temporal_client: Client, db_pool: asyncpg.Pool
):
    c = await customer(stack, tier="free", token="tok_success")
    manual, _ = await asyncio.gather(
        ask(stack, c["id"], "professional"), cross_free_limit(stack, c["id"])
    )
    await result(temporal_client, manual)
    await result(temporal_client, auto_upgrade_id(c["id"]))
    assert_one_at_a_time(await changes(db_pool, c["id"]))
    assert await tier(stack, c["id"]) == "professional"  # asked for, and paid for
    assert {b["status"] for b in await upgrade_bills(stack, c["id"])} == {"paid"}


@asynccontextmanager
async def turn_held(temporal: Client, live: LiveStack, cid: str) -> AsyncIterator[None]:
    """A change nobody runs (no worker on its queue) takes the customer's turn until the
    block ends: what arrives meanwhile queues behind it."""
    blocker = TurnRequest(customer_id=cid, workflow_id=f"blocker-{uuid.uuid4().hex[:8]}")
    held = await temporal.start_workflow(
        "UpgradeWorkflow",
        UpgradeInput(customer_id=cid, target_tier="free"),
        id=blocker.workflow_id,
        task_queue=f"nobody-{uuid.uuid4().hex[:8]}",
    )
    subscription = await temporal.start_workflow(
        "SubscriptionWorkflow",
        SubscriptionInput(customer_id=cid),
        id=subscription_id(cid),
        task_queue=live.settings.task_queue,
        start_signal="request_turn",
        start_signal_args=[blocker],
    )
    try:
        yield
    finally:
        await subscription.signal("release", blocker)
        await held.terminate("test over")


async def waiting(temporal: Client, cid: str, n: int) -> None:
    """Until `n` changes queue behind the holder of the customer's turn."""
    handle = temporal.get_workflow_handle(subscription_id(cid))
    for _ in range(400):
        status = await handle.query("status", result_type=SagaStatus)
        if status.details.endswith(f"; {n} waiting"):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{n} waiting never seen; last: {status.details}")


async def test_a_conversion_behind_a_manual_upgrade_waits_and_downgrades_nothing(
    stack: LiveStack, temporal_client: Client, db_pool: asyncpg.Pool
):
    c = await customer(stack, tier="free", token="tok_success")
    async with turn_held(temporal_client, stack, c["id"]):
        manual = await ask(stack, c["id"], "professional")
        await waiting(temporal_client, c["id"], 1)
        shown = await stack.api.get(f"/v1/workflows/{manual}", headers=stack.auth)
        assert shown.json()["step"] == "waiting_for_turn"
        await cross_free_limit(stack, c["id"])  # still free: the conversion starts, and queues
        await waiting(temporal_client, c["id"], 2)
        assert await tier(stack, c["id"]) == "free"  # nobody changed it out of turn
    up = await result(temporal_client, manual)
    conversion = await result(temporal_client, auto_upgrade_id(c["id"]))
    assert (up.outcome, up.from_tier, up.to_tier) == ("upgraded", "free", "professional")
    # The conversion's turn comes after the manual upgrade: the customer is no longer free.
    assert (conversion.outcome, conversion.to_tier) == ("unchanged", "professional")
    assert await tier(stack, c["id"]) == "professional"
    assert_one_at_a_time(await changes(db_pool, c["id"]))


async def test_a_downgrade_to_free_makes_the_customer_convertible_again(
    stack: LiveStack, temporal_client: Client, redis_client: Redis
):
    c = await customer(stack, tier="free", token="tok_success")
    await cross_free_limit(stack, c["id"])
    first = await temporal_client.get_workflow_handle(auto_upgrade_id(c["id"])).describe()
    assert (await result(temporal_client, auto_upgrade_id(c["id"]))).outcome == "upgraded"
    await result(temporal_client, await ask(stack, c["id"], "free"))
    read = (await stack.api.get(f"/v1/customers/{c['id']}", headers=stack.auth)).json()
    assert (read["tier"], read["auto_upgrade"]) == ("free", True)
    # The Redis flag only spares Temporal a start per request for a minute; a test does
    # not wait that long (the saga's id, not the flag, is what this test is about).
    await redis_client.delete(f"conversion:{c['id']}")
    await cross_free_limit(stack, c["id"])
    second = await temporal_client.get_workflow_handle(auto_upgrade_id(c["id"])).describe()
    assert second.run_id != first.run_id  # the same id, a new run
    done = await result(temporal_client, auto_upgrade_id(c["id"]))
    assert (done.outcome, done.from_tier, done.to_tier) == ("upgraded", "free", "starter")
    assert await tier(stack, c["id"]) == "starter"
    assert [b["status"] for b in await upgrade_bills(stack, c["id"])] == ["paid", "paid"]


async def revenue(live: LiveStack) -> dict[str, Any]:
    report = await live.api.get("/v1/reports/revenue", params={"period": PERIOD}, headers=live.auth)
    return dict(report.json())


async def test_a_late_payment_reverses_the_write_off_and_gives_the_tier_back(
    stack: LiveStack, temporal_client: Client, db_pool: asyncpg.Pool
):
    c = await customer(stack, tier="starter", token="tok_insufficient_funds")
    bill = await bill_period(stack, temporal_client, c["id"])
    assert bill["status"] == "uncollectible"
    assert await tier(stack, c["id"]) == "free"  # dunning's downgrade
    before = await revenue(stack)
    attached = await stack.api.post(
        f"/v1/customers/{c['id']}/payment-methods",
        json={"type": "credit_card", "token": "tok_success"},
        headers=stack.auth,
    )
    assert attached.status_code == 201, attached.text
    paid = await stack.api.post(f"/v1/bills/{bill['id']}/pay", headers=stack.auth)
    assert paid.status_code == 202, paid.text
    await asyncio.wait_for(
        temporal_client.get_workflow_handle(paid.json()["workflow_id"]).result(), timeout=60
    )
    after = (await stack.api.get(f"/v1/bills/{bill['id']}", headers=stack.auth)).json()
    assert (after["status"], after["amount_paid"]) == ("paid", "10.00")
    reversed_ = await db_pool.fetchval(
        "SELECT count(*) FROM ledger_entries WHERE bill_id = $1 AND kind = 'write_off_reversed'",
        bill["id"],
    )
    assert reversed_ == 1
    report = await revenue(stack)
    assert Decimal(before["written_off"]) - Decimal(report["written_off"]) == Decimal("10.00")
    assert Decimal(report["collected"]) - Decimal(before["collected"]) == Decimal("10.00")
    assert await tier(stack, c["id"]) == "starter"
    assert [(r["from_tier"], r["to_tier"]) for r in await changes(db_pool, c["id"])] == [
        ("starter", "starter"), ("starter", "free"), ("free", "starter"),
    ]  # fmt: skip
