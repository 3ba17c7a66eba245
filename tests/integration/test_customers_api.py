"""Customers, keys and payment methods through the API, against real Postgres and Redis."""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import httpx
import pytest

from api.app import create_app
from config.settings import Settings

CARD = "4242424242424242"


@asynccontextmanager
async def open_api(settings: Settings, **app_kwargs: Any) -> AsyncIterator[httpx.AsyncClient]:
    """The real app, inside its lifespan, over ASGI: no server, no port."""
    app = create_app(settings, **app_kwargs)
    transport = httpx.ASGITransport(app, raise_app_exceptions=False)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://api") as client,
    ):
        yield client


def service(settings: Settings) -> dict[str, str]:
    return {"Authorization": f"Bearer {settings.billing_api_key.get_secret_value()}"}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def create_customer(
    client: httpx.AsyncClient, settings: Settings, **fields: Any
) -> dict[str, Any]:
    body = {"name": "Ada", "email": f"{uuid.uuid4().hex[:12]}@example.com", **fields}
    response = await client.post("/v1/customers", json=body, headers=service(settings))
    assert response.status_code == 201, response.text
    customer: dict[str, Any] = response.json()
    return customer


async def attach_token(
    client: httpx.AsyncClient, settings: Settings, customer_id: str, token: str = "tok_success"
) -> httpx.Response:
    return await client.post(
        f"/v1/customers/{customer_id}/payment-methods",
        json={"type": "credit_card", "token": token},
        headers=service(settings),
    )


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with open_api(settings) as client:
        yield client


async def test_create_returns_the_key_once_and_stores_only_its_hash(
    api: httpx.AsyncClient, settings: Settings, db_pool: asyncpg.Pool
) -> None:
    created = await create_customer(api, settings, tax_rate="0.0825", tier="starter")
    assert created["id"].startswith("cus_")
    assert len(created["id"]) == 4 + 16
    assert created["api_key"].startswith("ck_")
    assert created["tier"] == "starter"
    assert created["tax_rate"] == "0.0825"
    assert created["status"] == "active"
    assert created["auto_upgrade"] is True
    assert created["currency"] == "USD"
    assert created["payment_method"] is None
    stored = await db_pool.fetchval(
        "SELECT api_key_hash FROM customers WHERE id = $1", created["id"]
    )
    assert stored == hashlib.sha256(created["api_key"].encode()).hexdigest()

    read = await api.get(f"/v1/customers/{created['id']}", headers=service(settings))
    assert read.status_code == 200
    assert "api_key" not in read.json()
    assert {k: v for k, v in created.items() if k != "api_key"} == read.json()


async def test_create_writes_the_initial_tier_change(
    api: httpx.AsyncClient, settings: Settings, db_pool: asyncpg.Pool
) -> None:
    started = "2026-03-15T12:00:00+00:00"
    created = await create_customer(api, settings, started_at=started, auto_upgrade=False)
    assert created["started_at"].startswith("2026-03-15T12:00:00")
    assert created["auto_upgrade"] is False
    assert created["tax_rate"] == "0"  # settings.default_tax_rate
    rows = await db_pool.fetch(
        "SELECT from_tier, to_tier, reason, effective_at::text, idempotency_key"
        " FROM tier_changes WHERE customer_id = $1",
        created["id"],
    )
    assert [tuple(r) for r in rows] == [
        ("free", "free", "created", "2026-03-15 12:00:00+00", f"created-{created['id']}")
    ]


async def test_keys_reach_only_their_own_customer(
    api: httpx.AsyncClient, settings: Settings
) -> None:
    mine = await create_customer(api, settings)
    other = await create_customer(api, settings)
    key = bearer(mine["api_key"])
    assert (await api.get(f"/v1/customers/{mine['id']}", headers=key)).status_code == 200

    forbidden = await api.get(f"/v1/customers/{other['id']}", headers=key)
    assert forbidden.status_code == 403
    assert forbidden.json()["error"]["code"] == "forbidden"

    for headers in ({}, bearer("ck_not_a_key"), bearer("sk_wrong"), {"Authorization": "Basic x"}):
        response = await api.get(f"/v1/customers/{mine['id']}", headers=headers)
        assert response.status_code == 401, headers
        assert response.json()["error"]["code"] == "unauthenticated"
        assert response.headers["WWW-Authenticate"] == "Bearer"

    # Service-only routes refuse a customer key.
    body = {"name": "x", "email": "x@example.com"}
    assert (await api.post("/v1/customers", json=body, headers=key)).status_code == 403
    assert (await api.get("/v1/customers", headers=key)).status_code == 403


async def test_list_customers_pages_by_id(api: httpx.AsyncClient, settings: Settings) -> None:
    for _ in range(3):
        await create_customer(api, settings)
    first = await api.get("/v1/customers", params={"limit": 2}, headers=service(settings))
    assert first.status_code == 200
    page = first.json()
    ids = [c["id"] for c in page["customers"]]
    assert len(ids) == 2
    assert ids == sorted(ids)
    assert page["next_after"] == ids[-1]
    second = await api.get(
        "/v1/customers", params={"limit": 2, "after": ids[-1]}, headers=service(settings)
    )
    assert all(c["id"] > ids[-1] for c in second.json()["customers"])
    bad = await api.get("/v1/customers", params={"limit": 0}, headers=service(settings))
    assert bad.status_code == 422


async def test_unknown_customer_is_404_in_the_envelope(
    api: httpx.AsyncClient, settings: Settings
) -> None:
    response = await api.get("/v1/customers/cus_nope", headers=service(settings))
    assert response.status_code == 404
    assert response.json() == {"error": {"code": "not_found", "message": "no customer 'cus_nope'"}}


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"name": "Ada"}, 422),
        ({"email": "a@example.com"}, 422),
        ({"name": "", "email": "a@example.com"}, 422),
        ({"name": "Ada", "email": "not-an-email"}, 422),
        ({"name": "Ada", "email": "a@example.com", "tier": "gold"}, 422),
        ({"name": "Ada", "email": "a@example.com", "tax_rate": "1"}, 422),
        ({"name": "Ada", "email": "a@example.com", "tax_rate": "-0.01"}, 422),
        ({"name": "Ada", "email": "a@example.com", "tax_rate": "0.1234567"}, 422),
        ({"name": "Ada", "email": "a@example.com", "tax_rate": "NaN"}, 422),
        ({"name": "Ada", "email": "a@example.com", "started_at": "2030-01-01T00:00:00Z"}, 422),
        ({"name": "Ada", "email": "a@example.com", "started_at": "2026-01-01T00:00:00"}, 422),
        ({"name": "Ada", "email": "a@example.com", "auto_upgrde": False}, 422),
    ],
)
async def test_bad_customer_input_is_refused_and_nothing_written(
    api: httpx.AsyncClient,
    settings: Settings,
    db_pool: asyncpg.Pool,
    body: dict[str, Any],
    status: int,
) -> None:
    before = await db_pool.fetchval("SELECT count(*) FROM customers")
    response = await api.post("/v1/customers", json=body, headers=service(settings))
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_input"
    assert error["message"]
    assert await db_pool.fetchval("SELECT count(*) FROM customers") == before


async def test_malformed_json_is_400(api: httpx.AsyncClient, settings: Settings) -> None:
    headers = {**service(settings), "Content-Type": "application/json"}
    response = await api.post("/v1/customers", content=b'{"name": "Ada",', headers=headers)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_json"


async def test_unknown_routes_and_methods_answer_in_the_envelope(api: httpx.AsyncClient) -> None:
    missing = await api.get("/v1/nothing-here")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    wrong = await api.delete("/v1/usage")
    assert wrong.status_code == 405
    assert wrong.json()["error"]["code"] == "method_not_allowed"


async def test_unexpected_errors_answer_500_without_a_trace(settings: Settings) -> None:
    app = create_app(settings)

    async def boom() -> None:
        raise RuntimeError("secret internals at line 42")

    app.add_api_route("/boom", boom)
    transport = httpx.ASGITransport(app, raise_app_exceptions=False)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://api") as client,
    ):
        response = await client.get("/boom")
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal_error"
    assert "secret" not in response.text
    assert "Traceback" not in response.text


async def test_payment_method_newest_is_default_and_token_never_echoed(
    api: httpx.AsyncClient, settings: Settings, db_pool: asyncpg.Pool
) -> None:
    customer = await create_customer(api, settings)
    first = await attach_token(api, settings, customer["id"], "tok_success")
    assert first.status_code == 201
    assert set(first.json()) == {"id", "type", "created_at"}
    assert "tok_" not in first.text
    second = await api.post(
        f"/v1/customers/{customer['id']}/payment-methods",
        json={"type": "paypal", "token": "tok_insufficient_funds"},
        headers=bearer(customer["api_key"]),
    )
    assert second.status_code == 201
    read = await api.get(f"/v1/customers/{customer['id']}", headers=service(settings))
    assert read.json()["payment_method"] == second.json()
    assert "tok_" not in read.text
    stored = await db_pool.fetchval(
        "SELECT count(*) FROM payment_methods WHERE customer_id = $1", customer["id"]
    )
    assert stored == 2


@pytest.mark.parametrize("number", [CARD, "4242 4242 4242 4242", "5555-5555-5555-4444"])
async def test_card_numbers_are_refused_never_stored_never_logged(
    api: httpx.AsyncClient,
    settings: Settings,
    db_pool: asyncpg.Pool,
    caplog: pytest.LogCaptureFixture,
    number: str,
) -> None:
    customer = await create_customer(api, settings)
    caplog.set_level(logging.DEBUG)
    response = await attach_token(api, settings, customer["id"], number)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "card_number_refused"
    digits = number.replace(" ", "").replace("-", "")
    assert digits[-8:] not in response.text.replace(" ", "").replace("-", "")
    assert all(digits[-8:] not in r.getMessage().replace(" ", "") for r in caplog.records)
    assert (
        await db_pool.fetchval(
            "SELECT count(*) FROM payment_methods WHERE customer_id = $1", customer["id"]
        )
        == 0
    )


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"type": "credit_card", "token": "not_a_token"}, "invalid_input"),
        ({"type": "credit_card", "token": "tok_has space"}, "invalid_input"),
        ({"type": "cheque", "token": "tok_success"}, "invalid_input"),
        ({"type": "credit_card"}, "invalid_input"),
        ({"type": "credit_card", "token": "4111111111111112"}, "invalid_input"),  # fails Luhn
    ],
)
async def test_bad_payment_methods_are_422_and_not_stored(
    api: httpx.AsyncClient,
    settings: Settings,
    db_pool: asyncpg.Pool,
    body: dict[str, Any],
    code: str,
) -> None:
    customer = await create_customer(api, settings)
    response = await api.post(
        f"/v1/customers/{customer['id']}/payment-methods", json=body, headers=service(settings)
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == code
    assert "4111111111111112" not in response.text
    count = await db_pool.fetchval(
        "SELECT count(*) FROM payment_methods WHERE customer_id = $1", customer["id"]
    )
    assert count == 0


async def test_payment_method_for_unknown_or_other_customer(
    api: httpx.AsyncClient, settings: Settings
) -> None:
    missing = await attach_token(api, settings, "cus_0000000000000000")
    assert missing.status_code == 404
    mine = await create_customer(api, settings)
    other = await create_customer(api, settings)
    response = await api.post(
        f"/v1/customers/{other['id']}/payment-methods",
        json={"type": "credit_card", "token": "tok_success"},
        headers=bearer(mine["api_key"]),
    )
    assert response.status_code == 403


async def test_attaching_a_method_calls_the_lead_hook_when_present(settings: Settings) -> None:
    """The charge saga's signal: `create_app(payment_method_attached=...)`, by default
    `api.temporal.on_payment_method_attached(state, customer_id)`, here a stand-in."""
    calls: list[str] = []

    async def on_payment_method_attached(state: object, customer_id: str) -> None:
        calls.append(customer_id)

    async with open_api(settings, payment_method_attached=on_payment_method_attached) as api:
        customer = await create_customer(api, settings)
        assert (await attach_token(api, settings, customer["id"])).status_code == 201
        assert calls == [customer["id"]]
        refused = await attach_token(api, settings, customer["id"], CARD)
        assert refused.status_code == 422
        assert calls == [customer["id"]]
