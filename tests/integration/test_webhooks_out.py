"""Outbound webhooks against a real HTTP receiver on 127.0.0.1, real Postgres and Temporal.

Delivered and verified with the `standardwebhooks` library; retried with the same
`webhook-id` when the receiver fails or is down; an endpoint dead for the whole schedule
disabled with an event; the outbox written in the caller's transaction or not at all.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from api import cli
from store.outbox import emit

from .harness import LiveStack
from .webhook_receiver import Receiver, eventually, receiving, webhook_stack


@pytest.fixture
async def stack(settings, db_pool, temporal_client, tmp_path) -> AsyncIterator[LiveStack]:
    async with webhook_stack(settings, db_pool, temporal_client, tmp_path) as live:
        yield live


async def register(live: LiveStack, url: str, events: list[str]) -> dict[str, Any]:
    made = await live.api.post(
        "/v1/webhook-endpoints",
        json={"url": url, "events": events, "description": "test"},
        headers=live.auth,
    )
    assert made.status_code == 201, made.text
    endpoint: dict[str, Any] = made.json()
    assert endpoint["secret"].startswith("whsec_")
    return endpoint


async def new_customer(live: LiveStack) -> dict[str, Any]:
    body = {"name": "Hook", "email": f"{uuid.uuid4().hex[:8]}@example.com"}
    made = await live.api.post("/v1/customers", json=body, headers=live.auth)
    assert made.status_code == 201, made.text
    customer: dict[str, Any] = made.json()
    return customer


async def event_of(live: LiveStack, customer_id: str, type_: str) -> dict[str, Any]:
    page = await live.api.get(
        "/v1/events", params={"customer_id": customer_id, "type": type_}, headers=live.auth
    )
    assert page.status_code == 200, page.text
    (event,) = page.json()["events"]
    return dict(event)


async def deliveries(live: LiveStack, endpoint_id: str) -> list[dict[str, Any]]:
    page = await live.api.get(f"/v1/webhook-endpoints/{endpoint_id}/deliveries", headers=live.auth)
    assert page.status_code == 200, page.text
    return list(page.json()["deliveries"])


async def test_customer_created_is_delivered_signed(stack: LiveStack) -> None:
    async with receiving() as receiver:
        endpoint = await register(stack, receiver.url, ["customer.created"])
        customer = await new_customer(stack)
        event = await event_of(stack, customer["id"], "customer.created")
        (got,) = await eventually(lambda: asyncio.sleep(0, receiver.of(event["id"])))
    body = got.verify(endpoint["secret"])
    assert body == {
        "id": event["id"],
        "type": "customer.created",
        "created_at": event["created_at"],
        "customer_id": customer["id"],
        "sequence": 1,
        "data": body["data"],
    }
    assert body["data"]["id"] == customer["id"]
    assert body["data"]["tier"] == "free"
    assert "api_key" not in body["data"]
    assert got.headers["webhook-id"] == event["id"]
    assert got.headers["content-type"] == "application/json"
    (attempt,) = await eventually(lambda: deliveries(stack, endpoint["id"]))
    assert attempt["delivered"]
    assert attempt["status_code"] == 200
    assert attempt["attempt"] == 1
    assert attempt["latency_ms"] >= 0
    detail = (await stack.api.get(f"/v1/events/{event['id']}", headers=stack.auth)).json()
    assert [(d["endpoint_id"], d["status"]) for d in detail["deliveries"]] == [
        (endpoint["id"], "delivered")
    ]
    listed = await stack.api.get(f"/v1/webhook-endpoints/{endpoint['id']}", headers=stack.auth)
    assert "secret" not in listed.json()


async def test_a_failing_receiver_gets_it_again_with_the_same_id(stack: LiveStack) -> None:
    failing = Receiver(status=lambda n: 500 if n <= 2 else 200)
    async with receiving(failing) as receiver:
        endpoint = await register(stack, receiver.url, ["customer.created"])
        customer = await new_customer(stack)
        event = await event_of(stack, customer["id"], "customer.created")

        async def delivered() -> list[dict[str, Any]]:
            log = await deliveries(stack, endpoint["id"])
            return log if any(d["delivered"] for d in log) else []

        log = await eventually(delivered)
    assert [r.headers["webhook-id"] for r in receiver.received] == [event["id"]] * 3
    assert len({r.body for r in receiver.received}) == 1  # the same bytes each time
    for request in receiver.received:
        request.verify(endpoint["secret"])
    log.reverse()  # oldest first
    assert [(d["attempt"], d["status_code"], d["delivered"]) for d in log] == [
        (1, 500, False),
        (2, 500, False),
        (3, 200, True),
    ]
    assert log[0]["next_try_at"] is not None
    assert log[0]["error"] == "answered 500"
    assert log[2]["next_try_at"] is None


async def test_a_receiver_down_for_a_while_gets_it_once_back(stack: LiveStack) -> None:
    receiver = Receiver()  # bound, not listening: connections are refused
    try:
        endpoint = await register(stack, receiver.url, ["customer.created"])
        customer = await new_customer(stack)
        event = await event_of(stack, customer["id"], "customer.created")
        (refused,) = await eventually(lambda: deliveries(stack, endpoint["id"]))
        assert not refused["delivered"]
        assert refused["status_code"] is None
        assert "ConnectError" in refused["error"]
        await receiver.start()
        (got,) = await eventually(lambda: asyncio.sleep(0, receiver.of(event["id"])))
        got.verify(endpoint["secret"])
    finally:
        await receiver.stop()


async def test_an_endpoint_dead_for_the_whole_schedule_is_disabled(stack: LiveStack) -> None:
    async with (
        receiving(Receiver(status=lambda n: 500)) as dead,
        receiving() as watcher,
    ):
        endpoint = await register(stack, dead.url, ["customer.created"])
        watch = await register(stack, watcher.url, ["webhook_endpoint.disabled"])
        customer = await new_customer(stack)

        async def disabled() -> dict[str, Any] | None:
            got = await stack.api.get(f"/v1/webhook-endpoints/{endpoint['id']}", headers=stack.auth)
            return None if got.json()["enabled"] else got.json()

        now = await eventually(disabled)
        assert "whole retry schedule" in now["disabled_reason"]
        assert len(dead.received) == 4  # the first attempt and one per delay of 3
        (notice,) = await eventually(lambda: asyncio.sleep(0, watcher.received))
    body = notice.verify(watch["secret"])
    assert body["type"] == "webhook_endpoint.disabled"
    assert body["customer_id"] is None
    assert body["data"]["id"] == endpoint["id"]
    assert body["data"]["enabled"] is False
    assert "secret" not in body["data"]
    event = await event_of(stack, customer["id"], "customer.created")
    detail = (await stack.api.get(f"/v1/events/{event['id']}", headers=stack.auth)).json()
    assert [d["status"] for d in detail["deliveries"]] == ["failed"]


async def test_a_slow_endpoint_does_not_hold_up_another(stack: LiveStack) -> None:
    async with (
        receiving(Receiver(delay_s=5.0)) as slow,  # past WEBHOOK_TIMEOUT (2s): a time-out
        receiving() as quick,
    ):
        slow_endpoint = await register(stack, slow.url, ["customer.created"])
        await register(stack, quick.url, ["customer.created"])
        customer = await new_customer(stack)
        event = await event_of(stack, customer["id"], "customer.created")
        began = asyncio.get_running_loop().time()
        await eventually(lambda: asyncio.sleep(0, quick.of(event["id"])))
        assert asyncio.get_running_loop().time() - began < 1.5
        # Asked too (its own delivery, in its own time), and still not answered.
        await eventually(lambda: asyncio.sleep(0, slow.of(event["id"])))
        (timed_out, *_) = await eventually(lambda: deliveries(stack, slow_endpoint["id"]))
    assert "ReadTimeout" in timed_out["error"]
    assert timed_out["latency_ms"] >= 2000


async def test_redeliver_sends_the_same_event_again(stack: LiveStack) -> None:
    async with receiving() as receiver:
        endpoint = await register(stack, receiver.url, ["customer.created"])
        customer = await new_customer(stack)
        event = await event_of(stack, customer["id"], "customer.created")
        await eventually(lambda: asyncio.sleep(0, receiver.of(event["id"])))
        headers = stack.auth | {"Idempotency-Key": f"again-{uuid.uuid4().hex[:6]}"}
        path = f"/v1/events/{event['id']}/redeliver"
        first = await stack.api.post(path, headers=headers)
        assert first.status_code == 202, first.text
        assert first.json()["status"] == "started"
        again = await stack.api.post(path, headers=headers)
        assert again.json() == first.json() | {"status": "already_started"}
        await eventually(lambda: asyncio.sleep(0, len(receiver.of(event["id"])) == 2))
        await asyncio.sleep(0.3)
    assert len(receiver.of(event["id"])) == 2  # the repeated key started nothing
    for got in receiver.of(event["id"]):
        got.verify(endpoint["secret"])


async def test_after_a_rotation_both_secrets_verify_for_the_overlap(stack: LiveStack) -> None:
    async with receiving() as receiver:
        endpoint = await register(stack, receiver.url, ["customer.created"])
        rotated = await stack.api.post(
            f"/v1/webhook-endpoints/{endpoint['id']}/rotate-secret",
            json={"overlap": "1h"},
            headers=stack.auth,
        )
        assert rotated.status_code == 200, rotated.text
        new_secret = rotated.json()["secret"]
        assert new_secret != endpoint["secret"]
        customer = await new_customer(stack)
        event = await event_of(stack, customer["id"], "customer.created")
        (got,) = await eventually(lambda: asyncio.sleep(0, receiver.of(event["id"])))
    assert got.verify(endpoint["secret"]) == got.verify(new_secret)
    assert len(got.headers["webhook-signature"].split(" ")) == 2


# --- the outbox, in the caller's transaction -------------------------------------------


async def _customer_id(pool: asyncpg.Pool) -> str:
    customer_id = f"cus_t{uuid.uuid4().hex[:10]}"
    await pool.execute(
        "INSERT INTO customers (id, name, email, tier, tax_rate, api_key_hash, started_at)"
        " VALUES ($1, 'Seq', 'seq@example.com', 'free', 0, $1, now())",
        customer_id,
    )
    return customer_id


class Boom(Exception):
    pass


async def test_a_transaction_that_fails_after_the_event_leaves_neither(
    db_pool: asyncpg.Pool,
) -> None:
    customer_id = f"cus_t{uuid.uuid4().hex[:10]}"
    emitted: list[str] = []

    async def change_then_crash() -> None:
        async with db_pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO customers (id, name, email, tier, tax_rate, api_key_hash, started_at)"
                " VALUES ($1, 'Gone', 'gone@example.com', 'free', 0, $1, now())",
                customer_id,
            )
            emitted.append(
                await emit(conn, type="customer.created", customer_id=customer_id, data={})
            )
            raise Boom  # the crash between the change and its commit

    with pytest.raises(Boom):
        await change_then_crash()
    assert await db_pool.fetchval("SELECT count(*) FROM customers WHERE id = $1", customer_id) == 0
    assert await db_pool.fetchval("SELECT count(*) FROM events WHERE id = $1", emitted[0]) == 0


async def test_emit_outside_a_transaction_is_refused(db_pool: asyncpg.Pool) -> None:
    async with db_pool.acquire() as conn:
        with pytest.raises(RuntimeError, match="inside the transaction"):
            await emit(conn, type="customer.created", customer_id=None, data={})
        with pytest.raises(ValueError, match="unknown event type"):
            async with conn.transaction():
                await emit(conn, type="customer.deleted", customer_id=None, data={})


async def test_per_customer_sequence_has_no_gap(db_pool: asyncpg.Pool) -> None:
    customer_id = await _customer_id(db_pool)

    async def one(i: int) -> None:
        async with db_pool.acquire() as conn, conn.transaction():
            await emit(conn, type="bill.created", customer_id=customer_id, data={"i": i})
            if i % 3 == 0:
                raise Boom  # its number is given back with the rollback

    results = await asyncio.gather(*(one(i) for i in range(30)), return_exceptions=True)
    assert sum(isinstance(r, Boom) for r in results) == 10
    rows = await db_pool.fetch(
        "SELECT sequence, data FROM events WHERE customer_id = $1 ORDER BY sequence", customer_id
    )
    assert [r["sequence"] for r in rows] == list(range(1, 21))
    assert sorted(r["data"]["i"] for r in rows) == [i for i in range(30) if i % 3]


async def test_tokens_are_stripped_before_the_event_is_stored(
    db_pool: asyncpg.Pool,
) -> None:
    customer_id = await _customer_id(db_pool)
    async with db_pool.acquire() as conn, conn.transaction():
        event_id = await emit(
            conn,
            type="bill.paid",
            customer_id=customer_id,
            data={
                "id": "bill_1",
                "method": {"type": "credit_card", "token": "tok_success"},
                "api_key": "ck_live",
            },  # fmt: skip
        )
    data = await db_pool.fetchval("SELECT data FROM events WHERE id = $1", event_id)
    assert data == {"id": "bill_1", "method": {"type": "credit_card"}}


async def test_billing_listen_prints_and_forwards(stack: LiveStack, capsys) -> None:
    argv = ["--url", str(stack.api.base_url), "--key", stack.auth["Authorization"][7:]]
    async with receiving() as app:
        argv += ["listen", "--forward-to", app.url, "--events", "customer.created"]
        running = asyncio.create_task(asyncio.to_thread(cli.main, [*argv, "--exit-after", "1"]))

        async def registered() -> list[dict[str, Any]]:
            page = await stack.api.get("/v1/webhook-endpoints", headers=stack.auth)
            found = page.json()["endpoints"]
            return [e for e in found if e["description"] == "billing listen (temporary)"]

        (endpoint,) = await eventually(registered)
        customer = await new_customer(stack)
        assert await asyncio.wait_for(running, 20) == 0
    printed = capsys.readouterr().out
    secret = printed.split("Signing secret of this session: ")[1].split()[0]
    event = await event_of(stack, customer["id"], "customer.created")
    (forwarded,) = app.of(event["id"])
    assert forwarded.verify(secret)["id"] == event["id"]  # forwarded unchanged, headers and all
    assert f"customer.created             {event['id']}  {customer['id']}  seq 1  -> 200" in printed
    assert "endpoint " + endpoint["id"] + " deleted" in printed
    gone = await stack.api.get(f"/v1/webhook-endpoints/{endpoint['id']}", headers=stack.auth)
    assert gone.status_code == 404
