"""Usage is priced at the tier in force when it occurred, and never before the subscription."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import asyncpg
import httpx
import pytest

from billing.periods import period_bounds, period_of, previous_period
from config.settings import Settings
from tests.integration.test_customers_api import create_customer, open_api, service
from tests.integration.test_usage_api import event, rows

THIS = period_of(datetime.now(UTC))
LAST = previous_period(THIS)
LAST_START = period_bounds(LAST)[0]
THIS_START = period_bounds(THIS)[0]


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with open_api(settings) as client:
        yield client


async def change_tier(pool: asyncpg.Pool, customer_id: str, to_tier: str, at: datetime) -> None:
    """What the upgrade saga's change_tier activity writes: a history row and the new tier."""
    async with pool.acquire() as conn, conn.transaction():
        from_tier = await conn.fetchval("SELECT tier FROM customers WHERE id = $1", customer_id)
        await conn.execute(
            """INSERT INTO tier_changes (customer_id, from_tier, to_tier, reason, effective_at,
                                         idempotency_key)
               VALUES ($1, $2, $3, 'test', $4, $5)""",
            customer_id,
            from_tier,
            to_tier,
            at,
            f"test-{uuid.uuid4().hex}",
        )
        await conn.execute("UPDATE customers SET tier = $2 WHERE id = $1", customer_id, to_tier)


async def priced(pool: asyncpg.Pool, event_id: str) -> tuple[str, Decimal, Decimal]:
    row = await pool.fetchrow(
        "SELECT tier, unit_price, cost FROM usage_events WHERE event_id = $1", event_id
    )
    assert row is not None, event_id
    return row["tier"], row["unit_price"], row["cost"]


async def usage_of(api: httpx.AsyncClient, settings: Settings, cid: str, period: str) -> Any:
    response = await api.get(
        f"/v1/customers/{cid}/usage", params={"period": period}, headers=service(settings)
    )
    assert response.status_code == 200, response.text
    return response.json()


async def test_usage_from_before_a_downgrade_is_priced_at_the_tier_then(
    api: httpx.AsyncClient, settings: Settings, db_pool: asyncpg.Pool
) -> None:
    customer = await create_customer(
        api, settings, tier="starter", started_at=LAST_START.isoformat()
    )
    await change_tier(db_pool, customer["id"], "free", THIS_START)
    late = event(customer["id"], "api_call", 500, occurred_at=f"{LAST}-15T10:00:00Z")
    response = await api.post("/v1/usage", json=late, headers=service(settings))
    assert response.status_code == 201, response.text
    assert await priced(db_pool, late["event_id"]) == ("starter", Decimal("0.001"), Decimal("0.5"))
    totals = await usage_of(api, settings, customer["id"], LAST)
    assert totals["totals"]["api_call"] == {"quantity": 500, "cost": "0.50"}
    assert totals["total_cost"] == "0.50"

    # In a batch: last month's event at starter, this month's at free.
    then = event(customer["id"], "llm_tokens", 1000, occurred_at=f"{LAST}-20T10:00:00Z")
    now = event(customer["id"], "llm_tokens", 1000)
    batch = await api.post(
        "/v1/usage/batch", json={"events": [then, now]}, headers=service(settings)
    )
    assert batch.json() == {"accepted": 2, "duplicates": 0, "rejected": []}
    assert await priced(db_pool, then["event_id"]) == (
        "starter",
        Decimal("0.00002"),
        Decimal("0.02"),
    )
    assert await priced(db_pool, now["event_id"]) == ("free", Decimal(0), Decimal(0))
    assert (await usage_of(api, settings, customer["id"], LAST))["total_cost"] == "0.52"


async def test_usage_from_before_an_upgrade_is_priced_at_free(
    api: httpx.AsyncClient, settings: Settings, db_pool: asyncpg.Pool
) -> None:
    customer = await create_customer(api, settings, tier="free", started_at=LAST_START.isoformat())
    await change_tier(db_pool, customer["id"], "starter", THIS_START)
    then = event(customer["id"], "api_call", 500, occurred_at=f"{LAST}-15T10:00:00Z")
    now = event(customer["id"], "api_call", 500)
    response = await api.post("/v1/usage", json=then, headers=service(settings))
    assert response.status_code == 201, response.text
    assert (await api.post("/v1/usage", json=now, headers=service(settings))).status_code == 201
    assert await priced(db_pool, then["event_id"]) == ("free", Decimal(0), Decimal(0))
    assert await priced(db_pool, now["event_id"]) == ("starter", Decimal("0.001"), Decimal("0.5"))
    assert (await usage_of(api, settings, customer["id"], LAST))["total_cost"] == "0.00"
    assert (await usage_of(api, settings, customer["id"], THIS))["total_cost"] == "0.50"


async def test_each_event_of_a_batch_takes_the_tier_of_its_own_moment(
    api: httpx.AsyncClient, settings: Settings, db_pool: asyncpg.Pool
) -> None:
    customer = await create_customer(
        api, settings, tier="starter", started_at=LAST_START.isoformat()
    )
    await change_tier(db_pool, customer["id"], "professional", LAST_START.replace(day=10))
    await change_tier(db_pool, customer["id"], "free", THIS_START)
    moments = {
        "starter": f"{LAST}-05T00:00:00Z",
        "professional": f"{LAST}-10T00:00:00Z",  # the change's own instant: the new tier
        "free": THIS_START.isoformat(),
    }
    events = {tier: event(customer["id"], occurred_at=at) for tier, at in moments.items()}
    batch = await api.post(
        "/v1/usage/batch", json={"events": list(events.values())}, headers=service(settings)
    )
    assert batch.json()["accepted"] == 3, batch.text
    assert {tier: (await priced(db_pool, e["event_id"]))[0] for tier, e in events.items()} == {
        "starter": "starter",
        "professional": "professional",
        "free": "free",
    }


async def test_contract_prices_apply_while_enterprise_was_in_force(
    api: httpx.AsyncClient, settings: Settings, db_pool: asyncpg.Pool
) -> None:
    customer = await create_customer(
        api, settings, tier="enterprise", started_at=LAST_START.isoformat()
    )
    await db_pool.execute(
        "UPDATE customers SET overrides = $2::jsonb WHERE id = $1",
        customer["id"],
        {"unit_prices": {"api_call": "0.0005"}},
    )
    await change_tier(db_pool, customer["id"], "starter", THIS_START)
    then = event(customer["id"], "api_call", 1000, occurred_at=f"{LAST}-15T10:00:00Z")
    assert (await api.post("/v1/usage", json=then, headers=service(settings))).status_code == 201
    assert await priced(db_pool, then["event_id"]) == (
        "enterprise",
        Decimal("0.0005"),
        Decimal("0.5"),
    )


async def test_usage_before_started_at_is_refused_and_nothing_written(
    api: httpx.AsyncClient, settings: Settings, db_pool: asyncpg.Pool
) -> None:
    started = LAST_START.replace(day=10)
    customer = await create_customer(api, settings, tier="starter", started_at=started.isoformat())
    early = event(customer["id"], occurred_at=f"{LAST}-09T23:59:59Z")
    single = await api.post("/v1/usage", json=early, headers=service(settings))
    assert single.status_code == 422, single.text
    error = single.json()["error"]
    assert error["code"] == "invalid_input"
    assert "started_at" in error["message"]
    assert started.isoformat() in error["message"]
    assert await rows(db_pool, customer["id"]) == 0

    on_time = event(customer["id"], occurred_at=started.isoformat())
    batch = await api.post(
        "/v1/usage/batch", json={"events": [early, on_time]}, headers=service(settings)
    )
    assert batch.status_code == 200, batch.text
    body = batch.json()
    assert (body["accepted"], body["duplicates"]) == (1, 0)
    assert [(r["event_id"], r["customer_id"], r["error"]) for r in body["rejected"]] == [
        (early["event_id"], customer["id"], "invalid_input")
    ]
    assert "started_at" in body["rejected"][0]["message"]
    assert await rows(db_pool, customer["id"]) == 1


@pytest.mark.parametrize("tier", ["free", "starter"])
async def test_usage_at_or_after_the_latest_change_keeps_the_current_tier(
    api: httpx.AsyncClient, settings: Settings, db_pool: asyncpg.Pool, tier: str
) -> None:
    customer = await create_customer(api, settings, tier=tier, started_at=LAST_START.isoformat())
    body = event(customer["id"], occurred_at=f"{LAST}-02T00:00:00Z")
    assert (await api.post("/v1/usage", json=body, headers=service(settings))).status_code == 201
    assert (await priced(db_pool, body["event_id"]))[0] == tier
