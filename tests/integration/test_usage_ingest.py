"""The lean ingest path's own promises: a cached plan or key is never trusted once it changed,
one Redis and one Postgres round trip leave Redis matching Postgres, the docs still hold."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal

import asyncpg
import httpx
import pytest
from redis.asyncio import Redis

from billing.periods import period_of, previous_period
from config.settings import Settings
from store.limiter import hour_window
from store.usage import read_live_counters
from tests.integration.test_customers_api import (
    bearer,
    create_customer,
    open_api,
    service,
)
from tests.integration.test_usage_api import event, rows
from tests.integration.test_usage_tier_history import change_tier, priced


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with open_api(settings) as client:
        yield client


async def hour_count(redis: Redis, customer_id: str) -> int:
    value = await redis.get(f"ratelimit:{customer_id}:{hour_window(datetime.now(UTC))[0]}")
    return int(value or 0)


async def test_a_tier_change_after_the_plan_was_cached_prices_at_the_new_tier(
    api: httpx.AsyncClient, settings: Settings, db_pool: asyncpg.Pool
) -> None:
    customer = await create_customer(api, settings, tier="starter")
    first = event(customer["id"], "llm_tokens", 1000)
    assert (await api.post("/v1/usage", json=first, headers=service(settings))).status_code == 201
    await change_tier(db_pool, customer["id"], "free", datetime.now(UTC))
    second = event(customer["id"], "llm_tokens", 1000)
    response = await api.post("/v1/usage", json=second, headers=service(settings))
    assert response.status_code == 201, response.text
    assert await priced(db_pool, first["event_id"]) == (
        "starter",
        Decimal("0.00002"),
        Decimal("0.02"),
    )
    assert await priced(db_pool, second["event_id"]) == ("free", Decimal(0), Decimal(0))


async def test_a_refusal_under_a_stale_plan_is_retried_under_the_current_one(
    api: httpx.AsyncClient, settings: Settings, db_pool: asyncpg.Pool, redis_client: Redis
) -> None:
    """Free without a card: refused at 1,000. Upgraded to starter behind the API's back, the
    cached plan still says 1,000; the refusal finds it stale and is tried under 10,000."""
    customer = await create_customer(api, settings)
    full = event(customer["id"], "api_call", 1000)
    assert (await api.post("/v1/usage", json=full, headers=service(settings))).status_code == 201
    over = event(customer["id"])
    assert (await api.post("/v1/usage", json=over, headers=service(settings))).status_code == 429
    await change_tier(db_pool, customer["id"], "starter", datetime.now(UTC))
    again = await api.post("/v1/usage", json=over, headers=service(settings))
    assert again.status_code == 201, again.text
    assert again.headers["X-RateLimit-Limit"] == "10000"
    assert await rows(db_pool, customer["id"]) == 2
    assert await hour_count(redis_client, customer["id"]) == 1001


async def test_a_cached_customer_key_that_no_longer_matches_is_refused(
    api: httpx.AsyncClient, settings: Settings, db_pool: asyncpg.Pool, redis_client: Redis
) -> None:
    customer = await create_customer(api, settings)
    key = bearer(customer["api_key"])
    assert (await api.post("/v1/usage", json=event(customer["id"]), headers=key)).status_code == 201
    await db_pool.execute(
        "UPDATE customers SET api_key_hash = $2 WHERE id = $1", customer["id"], uuid.uuid4().hex
    )
    refused = await api.post("/v1/usage", json=event(customer["id"]), headers=key)
    assert (refused.status_code, refused.json()["error"]["code"]) == (401, "unauthenticated")
    batch = await api.post("/v1/usage/batch", json={"events": [event(customer["id"])]}, headers=key)
    assert batch.status_code == 401
    assert await rows(db_pool, customer["id"]) == 1
    assert await hour_count(redis_client, customer["id"]) == 1


async def test_duplicates_leave_the_live_counters_as_postgres_has_them(
    api: httpx.AsyncClient, settings: Settings, db_pool: asyncpg.Pool, redis_client: Redis
) -> None:
    customer = await create_customer(api, settings, tier="starter")
    known = event(customer["id"], "agent_execution", 2)
    assert (await api.post("/v1/usage", json=known, headers=service(settings))).status_code == 201
    period = period_of(datetime.now(UTC))
    await redis_client.delete(f"usage:{customer['id']}:{period}")
    new = event(customer["id"], "api_call", 3)
    batch = await api.post(
        "/v1/usage/batch", json={"events": [known, new, known]}, headers=service(settings)
    )
    assert batch.json() == {"accepted": 1, "duplicates": 2, "rejected": []}
    # The known event was counted on the way in and taken back: its fields are gone again.
    assert await read_live_counters(redis_client, customer["id"], period) == {
        "api_call:quantity": 3,
        "api_call:cost": Decimal("0.003"),
    }
    assert await hour_count(redis_client, customer["id"]) == 3


async def test_the_openapi_describes_both_bodies(api: httpx.AsyncClient) -> None:
    spec = (await api.get("/openapi.json")).json()
    for path, required in (("/v1/usage", "quantity"), ("/v1/usage/batch", "events")):
        operation = spec["paths"][path]["post"]
        schema = operation["requestBody"]["content"]["application/json"]["schema"]
        assert required in schema["required"], path
        assert operation["security"] == [{"HTTPBearer": []}]
    single = spec["paths"]["/v1/usage"]["post"]["responses"]
    assert {"200", "201", "409", "422", "429", "503"} <= set(single)


async def test_occurred_at_is_stored_to_the_microsecond(
    api: httpx.AsyncClient, settings: Settings, db_pool: asyncpg.Pool
) -> None:
    """occurred_at travels as float seconds; Postgres rounds it back to the exact instant."""
    last = previous_period(period_of(datetime.now(UTC)))
    started = f"{last}-01T00:00:00Z"
    customer = await create_customer(api, settings, tier="starter", started_at=started)
    moments = [
        f"{last}-01T00:00:00Z",
        f"{last}-01T00:00:00.000001Z",
        f"{last}-15T23:59:59.999999Z",
        f"{last}-27T12:34:56.123457+05:30",
        datetime.now(UTC).isoformat(),
    ]
    events = [event(customer["id"], occurred_at=at) for at in moments]
    batch = await api.post("/v1/usage/batch", json={"events": events}, headers=service(settings))
    assert batch.json()["accepted"] == len(moments), batch.text
    for body in events:
        stored = await db_pool.fetchval(
            "SELECT occurred_at FROM usage_events WHERE event_id = $1", body["event_id"]
        )
        assert stored == datetime.fromisoformat(body["occurred_at"]), body["occurred_at"]


async def test_the_limiter_survives_a_script_flush(
    api: httpx.AsyncClient, settings: Settings, redis_client: Redis
) -> None:
    """The lane's EVALSHA meets NOSCRIPT, loads the script and carries on."""
    customer = await create_customer(api, settings)
    await redis_client.script_flush()
    response = await api.post(
        "/v1/usage", json=event(customer["id"], quantity=5), headers=service(settings)
    )
    assert response.status_code == 201, response.text
    assert response.headers["X-RateLimit-Remaining"] == "995"
    assert await hour_count(redis_client, customer["id"]) == 5
