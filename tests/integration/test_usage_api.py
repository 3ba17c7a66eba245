"""Usage events through the API: priced at arrival, deduplicated by Postgres, late-event rules."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import httpx
import pytest
from redis.asyncio import Redis

from billing.periods import period_of, previous_period
from config.settings import Settings
from store.usage import read_live_counters
from tests.integration.test_customers_api import bearer, create_customer, open_api, service


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with open_api(settings) as client:
        yield client


def event(
    customer_id: str, kind: str = "api_call", quantity: int = 1, **extra: Any
) -> dict[str, Any]:
    return {
        "event_id": f"ev_{uuid.uuid4().hex}",
        "customer_id": customer_id,
        "kind": kind,
        "quantity": quantity,
        **extra,
    }


async def rows(pool: asyncpg.Pool, customer_id: str) -> int:
    count: int = await pool.fetchval(
        "SELECT count(*) FROM usage_events WHERE customer_id = $1", customer_id
    )
    return count


async def bill_period(pool: asyncpg.Pool, customer_id: str, period: str) -> None:
    """A cycle bill row, as the lead's bill builder writes it, under the same lock."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "SELECT pg_advisory_xact_lock(hashtext($1::text || ':' || $2::text))",
            customer_id,
            period,
        )
        await conn.execute(
            """INSERT INTO bills (id, customer_id, period, kind, tier, currency, lines,
                                  subtotal, tax, total, workflow_id, idempotency_key)
               VALUES ($1, $2, $3, 'cycle', 'starter', 'USD', '[]'::jsonb, 0, 0, 0, 'wf', $1)""",
            f"bill_{uuid.uuid4().hex[:16]}",
            customer_id,
            period,
        )


async def test_one_event_is_priced_at_the_current_tier(
    api: httpx.AsyncClient, settings: Settings, db_pool: asyncpg.Pool
) -> None:
    customer = await create_customer(api, settings, tier="starter")
    body = event(customer["id"], "llm_tokens", 1500)
    response = await api.post("/v1/usage", json=body, headers=bearer(customer["api_key"]))
    assert response.status_code == 201, response.text
    assert response.json() == {"recorded": True, "duplicate": False}
    row = await db_pool.fetchrow(
        "SELECT kind, quantity, tier, unit_price, cost, period::text, occurred_at"
        " FROM usage_events WHERE customer_id = $1 AND event_id = $2",
        customer["id"],
        body["event_id"],
    )
    assert row is not None
    assert row["kind"] == "llm_tokens"
    assert row["quantity"] == 1500
    assert row["tier"] == "starter"
    assert row["unit_price"] == Decimal("0.00002")
    assert row["cost"] == Decimal("0.03")
    assert row["period"] == period_of(datetime.now(UTC))
    assert abs(row["occurred_at"] - datetime.now(UTC)) < timedelta(minutes=1)


async def test_free_usage_costs_nothing(
    api: httpx.AsyncClient, settings: Settings, db_pool: asyncpg.Pool
) -> None:
    customer = await create_customer(api, settings)
    response = await api.post(
        "/v1/usage", json=event(customer["id"], "agent_execution", 3), headers=service(settings)
    )
    assert response.status_code == 201
    cost = await db_pool.fetchval(
        "SELECT cost FROM usage_events WHERE customer_id = $1", customer["id"]
    )
    assert cost == 0


async def test_same_event_id_across_calls_is_recorded_once(
    api: httpx.AsyncClient, settings: Settings, db_pool: asyncpg.Pool
) -> None:
    customer = await create_customer(api, settings)
    body = event(customer["id"])
    first = await api.post("/v1/usage", json=body, headers=service(settings))
    again = await api.post("/v1/usage", json=body, headers=service(settings))
    assert (first.status_code, first.json()) == (201, {"recorded": True, "duplicate": False})
    assert (again.status_code, again.json()) == (200, {"recorded": False, "duplicate": True})
    assert await rows(db_pool, customer["id"]) == 1
    batch = await api.post("/v1/usage/batch", json={"events": [body]}, headers=service(settings))
    assert batch.json() == {"accepted": 0, "duplicates": 1, "rejected": []}
    assert await rows(db_pool, customer["id"]) == 1


async def test_same_event_id_inside_one_batch_is_recorded_once(
    api: httpx.AsyncClient, settings: Settings, db_pool: asyncpg.Pool
) -> None:
    customer = await create_customer(api, settings)
    twice = event(customer["id"], "llm_tokens", 10)
    other = event(customer["id"], "agent_execution", 2)
    response = await api.post(
        "/v1/usage/batch", json={"events": [twice, other, twice, twice]}, headers=service(settings)
    )
    assert response.status_code == 200
    assert response.json() == {"accepted": 2, "duplicates": 2, "rejected": []}
    assert await rows(db_pool, customer["id"]) == 2


async def test_the_same_event_id_for_two_customers_is_two_events(
    api: httpx.AsyncClient, settings: Settings, db_pool: asyncpg.Pool
) -> None:
    a = await create_customer(api, settings)
    b = await create_customer(api, settings)
    first = event(a["id"])
    second = {**first, "customer_id": b["id"]}
    response = await api.post(
        "/v1/usage/batch", json={"events": [first, second]}, headers=service(settings)
    )
    assert response.json()["accepted"] == 2


async def test_batch_of_5000_is_accepted_and_5001_refused(
    api: httpx.AsyncClient, settings: Settings, db_pool: asyncpg.Pool
) -> None:
    customer = await create_customer(api, settings, tier="enterprise")
    events = [event(customer["id"], "llm_tokens", 1) for _ in range(5001)]
    too_many = await api.post("/v1/usage/batch", json={"events": events}, headers=service(settings))
    assert too_many.status_code == 422
    assert await rows(db_pool, customer["id"]) == 0
    ok = await api.post(
        "/v1/usage/batch", json={"events": events[:5000]}, headers=service(settings)
    )
    assert ok.status_code == 200
    assert ok.json()["accepted"] == 5000
    assert await rows(db_pool, customer["id"]) == 5000


async def test_batch_rejects_unknown_customers_and_records_the_rest(
    api: httpx.AsyncClient, settings: Settings, db_pool: asyncpg.Pool
) -> None:
    customer = await create_customer(api, settings)
    ghost = event("cus_ffffffffffffffff")
    response = await api.post(
        "/v1/usage/batch",
        json={"events": [event(customer["id"]), ghost]},
        headers=service(settings),
    )
    body = response.json()
    assert body["accepted"] == 1
    assert body["rejected"] == [
        {
            "event_id": ghost["event_id"],
            "customer_id": ghost["customer_id"],
            "error": "not_found",
            "message": "no customer 'cus_ffffffffffffffff'",
        }
    ]


def subscribed_since_last_period() -> tuple[str, str]:
    """(last period, its first instant): late usage needs a subscription that began by then."""
    last = previous_period(period_of(datetime.now(UTC)))
    return last, f"{last}-01T00:00:00Z"


async def test_late_event_counts_in_its_period_until_that_period_is_billed(
    api: httpx.AsyncClient, settings: Settings, db_pool: asyncpg.Pool
) -> None:
    last, started = subscribed_since_last_period()
    customer = await create_customer(api, settings, tier="starter", started_at=started)
    late_at = f"{last}-15T10:00:00Z"
    early = event(customer["id"], occurred_at=late_at)
    recorded = await api.post("/v1/usage", json=early, headers=service(settings))
    assert recorded.status_code == 201
    period = await db_pool.fetchval(
        "SELECT period::text FROM usage_events WHERE event_id = $1", early["event_id"]
    )
    assert period == last

    await bill_period(db_pool, customer["id"], last)
    refused = await api.post(
        "/v1/usage", json=event(customer["id"], occurred_at=late_at), headers=service(settings)
    )
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "period_already_billed"
    assert await rows(db_pool, customer["id"]) == 1

    late = event(customer["id"], occurred_at=late_at)
    now = event(customer["id"])
    batch = await api.post(
        "/v1/usage/batch", json={"events": [late, now]}, headers=service(settings)
    )
    assert batch.json()["accepted"] == 1
    assert [(r["event_id"], r["error"]) for r in batch.json()["rejected"]] == [
        (late["event_id"], "period_already_billed")
    ]
    assert await rows(db_pool, customer["id"]) == 2


async def test_late_usage_waits_for_a_bill_being_built_and_is_then_refused(
    api: httpx.AsyncClient, settings: Settings, db_pool: asyncpg.Pool
) -> None:
    """The bill builder's exclusive lock makes racing late usage wait, then see the bill."""
    last, started = subscribed_since_last_period()
    customer = await create_customer(api, settings, tier="starter", started_at=started)
    late = event(customer["id"], occurred_at=f"{last}-20T08:00:00Z")
    async with db_pool.acquire() as conn:
        building = conn.transaction()
        await building.start()
        await conn.execute(
            "SELECT pg_advisory_xact_lock(hashtext($1::text || ':' || $2::text))",
            customer["id"],
            last,
        )
        pending = asyncio.create_task(api.post("/v1/usage", json=late, headers=service(settings)))
        await asyncio.sleep(0.5)
        assert not pending.done()  # waiting on the builder's lock
        await conn.execute(
            """INSERT INTO bills (id, customer_id, period, kind, tier, currency, lines,
                                  subtotal, tax, total, workflow_id, idempotency_key)
               VALUES ($1, $2, $3, 'cycle', 'starter', 'USD', '[]'::jsonb, 0, 0, 0, 'wf', $1)""",
            f"bill_{uuid.uuid4().hex[:16]}",
            customer["id"],
            last,
        )
        await building.commit()
    response = await pending
    assert response.status_code == 409
    assert await rows(db_pool, customer["id"]) == 0


async def test_a_repeated_event_id_in_a_billed_period_is_a_duplicate(
    api: httpx.AsyncClient, settings: Settings, db_pool: asyncpg.Pool
) -> None:
    """A client retrying after the bill was built gets "already have it", not a refusal."""
    last, started = subscribed_since_last_period()
    customer = await create_customer(api, settings, tier="starter", started_at=started)
    known = event(customer["id"], occurred_at=f"{last}-15T10:00:00Z")
    assert (await api.post("/v1/usage", json=known, headers=service(settings))).status_code == 201
    await bill_period(db_pool, customer["id"], last)

    again = await api.post("/v1/usage", json=known, headers=service(settings))
    assert (again.status_code, again.json()) == (200, {"recorded": False, "duplicate": True})
    new_late = event(customer["id"], occurred_at=f"{last}-16T10:00:00Z")
    refused = await api.post("/v1/usage", json=new_late, headers=service(settings))
    assert (refused.status_code, refused.json()["error"]["code"]) == (409, "period_already_billed")

    now = event(customer["id"])
    batch = await api.post(
        "/v1/usage/batch", json={"events": [known, new_late, now]}, headers=service(settings)
    )
    assert batch.status_code == 200, batch.text
    body = batch.json()
    assert (body["accepted"], body["duplicates"]) == (1, 1)
    assert [(r["event_id"], r["error"]) for r in body["rejected"]] == [
        (new_late["event_id"], "period_already_billed")
    ]
    assert await rows(db_pool, customer["id"]) == 2


async def test_usage_totals_per_kind_rounded_once(
    api: httpx.AsyncClient, settings: Settings
) -> None:
    customer = await create_customer(api, settings, tier="starter")
    events = [
        event(customer["id"], "api_call", 1),
        event(customer["id"], "api_call", 2),  # 3 calls: 0.003 -> "0.00"
        event(customer["id"], "llm_tokens", 1000),
        event(customer["id"], "llm_tokens", 500),  # 0.03
        event(customer["id"], "agent_execution", 7),  # 0.07
    ]
    await api.post("/v1/usage/batch", json={"events": events}, headers=service(settings))
    period = period_of(datetime.now(UTC))
    response = await api.get(
        f"/v1/customers/{customer['id']}/usage",
        params={"period": period},
        headers=bearer(customer["api_key"]),
    )
    assert response.status_code == 200
    assert response.json() == {
        "period": period,
        "customer_id": customer["id"],
        "currency": "USD",
        "totals": {
            "api_call": {"quantity": 3, "cost": "0.00"},
            "llm_tokens": {"quantity": 1500, "cost": "0.03"},
            "agent_execution": {"quantity": 7, "cost": "0.07"},
        },
        "total_cost": "0.10",
    }


async def test_usage_totals_refusals(api: httpx.AsyncClient, settings: Settings) -> None:
    customer = await create_customer(api, settings)
    other = await create_customer(api, settings)
    url = f"/v1/customers/{customer['id']}/usage"
    for period in ("2026-13", "2026-1", "abc", "1999-12"):
        response = await api.get(url, params={"period": period}, headers=service(settings))
        assert response.status_code == 422, period
        assert response.json()["error"]["code"] == "invalid_input"
    assert (await api.get(url, headers=service(settings))).status_code == 422
    missing = await api.get(
        "/v1/customers/cus_0000000000000000/usage",
        params={"period": "2026-01"},
        headers=service(settings),
    )
    assert missing.status_code == 404
    forbidden = await api.get(url, params={"period": "2026-01"}, headers=bearer(other["api_key"]))
    assert forbidden.status_code == 403


async def test_live_counters_follow_recorded_usage(
    api: httpx.AsyncClient, settings: Settings, redis_client: Redis
) -> None:
    customer = await create_customer(api, settings, tier="starter")
    body = event(customer["id"], "llm_tokens", 1500)
    await api.post("/v1/usage", json=body, headers=service(settings))
    await api.post("/v1/usage", json=body, headers=service(settings))  # duplicate: not counted
    await api.post(
        "/v1/usage", json=event(customer["id"], "api_call", 4), headers=service(settings)
    )
    live = await read_live_counters(redis_client, customer["id"], period_of(datetime.now(UTC)))
    assert live == {
        "llm_tokens:quantity": 1500,
        "llm_tokens:cost": Decimal("0.03"),
        "api_call:quantity": 4,
        "api_call:cost": Decimal("0.004"),
    }


async def test_a_customer_key_records_only_its_own_usage(
    api: httpx.AsyncClient, settings: Settings, db_pool: asyncpg.Pool
) -> None:
    mine = await create_customer(api, settings)
    other = await create_customer(api, settings)
    key = bearer(mine["api_key"])
    assert (await api.post("/v1/usage", json=event(mine["id"]), headers=key)).status_code == 201
    refused = await api.post("/v1/usage", json=event(other["id"]), headers=key)
    assert refused.status_code == 403
    mixed = {"events": [event(mine["id"]), event(other["id"])]}
    assert (await api.post("/v1/usage/batch", json=mixed, headers=key)).status_code == 403
    assert await rows(db_pool, mine["id"]) == 1
    assert await rows(db_pool, other["id"]) == 0


FUTURE = (datetime.now(UTC) + timedelta(hours=2)).isoformat()


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"kind": "bananas"}, 422, "invalid_input"),
        ({"quantity": -5}, 422, "invalid_input"),
        ({"quantity": 0}, 422, "invalid_input"),
        ({"quantity": 1.5}, 422, "invalid_input"),
        ({"quantity": "3"}, 422, "invalid_input"),
        ({"event_id": None}, 422, "invalid_input"),
        ({"kind": None}, 422, "invalid_input"),
        ({"event_id": ""}, 422, "invalid_input"),
        ({"occurred_at": FUTURE}, 422, "invalid_input"),
        ({"occurred_at": "2026-01-01T00:00:00"}, 422, "invalid_input"),
        ({"occurred_at": "yesterday"}, 422, "invalid_input"),
        ({"occurred_at": "1999-12-31T00:00:00Z"}, 422, "invalid_input"),
        ({"occured_at": "2026-01-01T00:00:00Z"}, 422, "invalid_input"),
    ],
)
async def test_bad_events_are_refused_and_nothing_written(
    api: httpx.AsyncClient,
    settings: Settings,
    db_pool: asyncpg.Pool,
    change: dict[str, Any],
    status: int,
    code: str,
) -> None:
    customer = await create_customer(api, settings)
    good = event(customer["id"])
    bad = {k: v for k, v in {**good, **change}.items() if v is not None}
    single = await api.post("/v1/usage", json=bad, headers=service(settings))
    assert (single.status_code, single.json()["error"]["code"]) == (status, code), single.text
    batch = await api.post(
        "/v1/usage/batch", json={"events": [event(customer["id"]), bad]}, headers=service(settings)
    )
    assert (batch.status_code, batch.json()["error"]["code"]) == (status, code), batch.text
    assert "events.1" in batch.json()["error"]["message"]
    assert await rows(db_pool, customer["id"]) == 0


async def test_malformed_requests_write_nothing(
    api: httpx.AsyncClient, settings: Settings, db_pool: asyncpg.Pool
) -> None:
    customer = await create_customer(api, settings)
    headers = {**service(settings), "Content-Type": "application/json"}
    broken = await api.post("/v1/usage", content=b'{"event_id": "e1", ', headers=headers)
    assert (broken.status_code, broken.json()["error"]["code"]) == (400, "malformed_json")
    not_json = await api.post(
        "/v1/usage/batch",
        content=b"events=1",
        headers={**service(settings), "Content-Type": "text/plain"},
    )
    assert not_json.status_code == 400
    bodies: list[Any] = [{}, {"events": []}, {"events": "x"}, [event(customer["id"])]]
    for body in bodies:
        response = await api.post("/v1/usage/batch", json=body, headers=service(settings))
        assert response.status_code == 422, body
    unknown = await api.post(
        "/v1/usage", json=event("cus_0000000000000000"), headers=service(settings)
    )
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (404, "not_found")
    anonymous = await api.post("/v1/usage", json=event(customer["id"]))
    assert anonymous.status_code == 401
    assert await rows(db_pool, customer["id"]) == 0
