"""The webhook endpoint and event routes: service key only, bad input refused, nothing written."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest

from config.settings import Settings

from .test_customers_api import bearer, create_customer, open_api, service


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with open_api(settings) as client:
        yield client


@pytest.fixture
async def production_api(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """Private and loopback targets refused, as outside dev."""
    async with open_api(settings.model_copy(update={"webhook_allow_private": False})) as client:
        yield client


async def _count(pool: asyncpg.Pool) -> int:
    return int(await pool.fetchval("SELECT count(*) FROM webhook_endpoints"))


async def _create(api: httpx.AsyncClient, settings: Settings, **body: Any) -> httpx.Response:
    payload = {"url": "https://hooks.example.com/billing", **body}
    return await api.post("/v1/webhook-endpoints", json=payload, headers=service(settings))


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ({"url": "ftp://example.com/x"}, 422, "only http and https"),
        ({"url": "https://u:p@example.com/x"}, 422, "credentials"),
        ({"events": ["bill.payed"]}, 422, "events.0"),
        ({"events": ["bill.paid", "bill.paid"]}, 422, "twice"),
        ({"secret": "whsec_mine"}, 422, "secret"),
        ({"description": "a\x00b"}, 422, "description"),
    ],
)
async def test_bad_input_is_refused_and_nothing_written(
    api: httpx.AsyncClient, settings: Settings, db_pool: asyncpg.Pool, body, status, says
) -> None:
    before = await _count(db_pool)
    answer = await _create(api, settings, **body)
    assert answer.status_code == status, answer.text
    assert says in answer.json()["error"]["message"]
    assert await _count(db_pool) == before


async def test_loopback_and_private_targets_refused_outside_dev(
    production_api: httpx.AsyncClient, settings: Settings, db_pool: asyncpg.Pool
) -> None:
    before = await _count(db_pool)
    for url in ("http://127.0.0.1:3000/hooks", "http://10.1.2.3/x", "http://localhost/x"):
        answer = await _create(production_api, settings, url=url)
        assert answer.status_code == 422, answer.text
        assert answer.json()["error"]["code"] == "invalid_input"
    assert await _count(db_pool) == before


async def test_only_the_service_key(api: httpx.AsyncClient, settings: Settings) -> None:
    customer = await create_customer(api, settings)
    key = bearer(customer["api_key"])
    for method, path in [
        ("POST", "/v1/webhook-endpoints"),
        ("GET", "/v1/webhook-endpoints"),
        ("GET", "/v1/events"),
        ("GET", "/v1/events/evt_x"),
    ]:
        answer = await api.request(method, path, headers=key, json={"url": "https://a.b/c"})
        assert answer.status_code == 403, (method, path, answer.text)
    assert (await api.get("/v1/events")).status_code == 401


async def test_the_endpoint_lifecycle(api: httpx.AsyncClient, settings: Settings) -> None:
    made = await _create(api, settings, events=["bill.paid"], description="books")
    assert made.status_code == 201, made.text
    endpoint = made.json()
    path = f"/v1/webhook-endpoints/{endpoint['id']}"
    got = (await api.get(path, headers=service(settings))).json()
    assert "secret" not in got
    assert got == {k: v for k, v in endpoint.items() if k != "secret"}

    empty = await api.patch(path, json={}, headers=service(settings))
    assert empty.status_code == 422
    changed = await api.patch(
        path, json={"enabled": False, "events": []}, headers=service(settings)
    )
    assert changed.status_code == 200, changed.text
    assert (changed.json()["enabled"], changed.json()["events"]) == (False, [])
    assert changed.json()["disabled_reason"] == "disabled by the operator"
    enabled = await api.patch(path, json={"enabled": True}, headers=service(settings))
    assert enabled.json()["disabled_reason"] is None

    rotated = await api.post(
        f"{path}/rotate-secret", json={"overlap": "8d"}, headers=service(settings)
    )
    assert rotated.status_code == 422
    rotated = await api.post(f"{path}/rotate-secret", headers=service(settings))
    assert rotated.status_code == 200, rotated.text
    assert rotated.json()["secret"] != endpoint["secret"]
    assert rotated.json()["previous_secret_expires_at"] is not None

    log = await api.get(f"{path}/deliveries", headers=service(settings))
    assert log.json() == {"deliveries": [], "next_after": None}
    assert (await api.delete(path, headers=service(settings))).status_code == 204
    for answer in (
        await api.get(path, headers=service(settings)),
        await api.delete(path, headers=service(settings)),
        await api.get(f"{path}/deliveries", headers=service(settings)),
    ):
        assert answer.status_code == 404
        assert answer.json()["error"]["code"] == "not_found"


async def test_events_are_listed_newest_first_and_paged(
    api: httpx.AsyncClient, settings: Settings
) -> None:
    customer = await create_customer(api, settings)
    page = await api.get(
        "/v1/events", params={"customer_id": customer["id"]}, headers=service(settings)
    )
    (event,) = page.json()["events"]
    assert event["type"] == "customer.created"
    assert event["sequence"] == 1
    assert event["data"]["email"] == customer["email"]
    assert "api_key" not in event["data"]
    one = await api.get("/v1/events", params={"limit": 1}, headers=service(settings))
    after = one.json()["next_after"]
    assert after is not None
    two = await api.get(
        "/v1/events", params={"limit": 1, "after": after}, headers=service(settings)
    )
    assert two.json()["events"][0]["id"] != one.json()["events"][0]["id"]
    bad = await api.get("/v1/events", params={"type": "nope"}, headers=service(settings))
    assert bad.status_code == 422
    unknown = await api.get("/v1/events", params={"after": "evt_nope"}, headers=service(settings))
    assert unknown.status_code == 422
    missing = await api.post("/v1/events/evt_nope/redeliver", headers=service(settings))
    assert missing.status_code == 404


async def test_redeliver_with_no_endpoint_subscribed_is_a_conflict(
    api: httpx.AsyncClient, settings: Settings, db_pool: asyncpg.Pool
) -> None:
    customer = await create_customer(api, settings)
    page = await api.get(
        "/v1/events", params={"customer_id": customer["id"]}, headers=service(settings)
    )
    event_id = page.json()["events"][0]["id"]
    made = (await _create(api, settings, events=["bill.paid"])).json()
    try:
        answer = await api.post(
            f"/v1/events/{event_id}/redeliver",
            json={"endpoint_id": made["id"]},
            headers=service(settings),
        )
        assert answer.status_code == 409, answer.text
        assert "no enabled webhook endpoint takes customer.created" in answer.text
    finally:
        await db_pool.execute("DELETE FROM webhook_endpoints WHERE id = $1", made["id"])
