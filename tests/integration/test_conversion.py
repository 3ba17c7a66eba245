"""Free to paid: a convertible free customer is not refused; one upgrade saga starts."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
from redis.asyncio import Redis
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from api.temporal import start_auto_conversion
from billing.workflow_ids import auto_upgrade_id
from config.settings import Settings
from tests.integration.test_customers_api import attach_token, create_customer, open_api, service


@pytest.fixture
def conv_settings(settings: Settings) -> Settings:
    """A task queue of this test's own: no other test's worker picks its workflows up."""
    return settings.model_copy(update={"task_queue": f"conversion-{uuid.uuid4().hex[:8]}"})


@pytest.fixture
async def api(conv_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with open_api(conv_settings) as client:
        yield client


def calls(customer_id: str, n: int) -> list[dict[str, Any]]:
    return [
        {
            "event_id": f"ev_{uuid.uuid4().hex}",
            "customer_id": customer_id,
            "kind": "api_call",
            "quantity": 1,
        }
        for _ in range(n)
    ]


async def api_calls_recorded(pool: asyncpg.Pool, customer_id: str) -> int:
    total: int = await pool.fetchval(
        "SELECT coalesce(sum(quantity), 0) FROM usage_events WHERE customer_id = $1", customer_id
    )
    return total


async def convertible_customer(api: httpx.AsyncClient, settings: Settings) -> dict[str, Any]:
    customer = await create_customer(api, settings)
    assert (await attach_token(api, settings, customer["id"])).status_code == 201
    return customer


async def cross_the_free_limit(
    api: httpx.AsyncClient, settings: Settings, customer_id: str
) -> list[httpx.Response]:
    """900 in one batch, then 200 single calls at once: they cross 1,000 together."""
    first = await api.post(
        "/v1/usage/batch", json={"events": calls(customer_id, 900)}, headers=service(settings)
    )
    assert first.json()["accepted"] == 900
    return await asyncio.gather(
        *(
            api.post("/v1/usage", json=body, headers=service(settings))
            for body in calls(customer_id, 200)
        )
    )


async def runs_for(client: Client, customer_id: str) -> int:
    """Upgrade workflows of this customer, as visibility sees them (it lags a little)."""
    query = f"CustomerId = '{customer_id}'"
    for _ in range(50):
        count = (await client.count_workflows(query)).count
        if count:
            return count
        await asyncio.sleep(0.1)
    return 0


async def test_crossing_the_free_limit_records_everything_and_starts_one_upgrade(
    api: httpx.AsyncClient,
    conv_settings: Settings,
    db_pool: asyncpg.Pool,
    redis_client: Redis,
    temporal_client: Client,
) -> None:
    customer = await convertible_customer(api, conv_settings)
    responses = await cross_the_free_limit(api, conv_settings, customer["id"])

    assert [r.status_code for r in responses] == [201] * 200
    # Limited as starter from the start: the conversion is what lifts the free limit.
    assert {r.headers["X-RateLimit-Limit"] for r in responses} == {"10000"}
    assert await api_calls_recorded(db_pool, customer["id"]) == 1100

    handle = temporal_client.get_workflow_handle(auto_upgrade_id(customer["id"]))
    description = await handle.describe()
    assert description.workflow_type == "UpgradeWorkflow"
    assert description.status == WorkflowExecutionStatus.RUNNING
    assert await runs_for(temporal_client, customer["id"]) == 1

    # Later requests over the line (even with the Redis flag gone) never start a second saga.
    await redis_client.delete(f"conversion:{customer['id']}")
    later = await api.post(
        "/v1/usage", json=calls(customer["id"], 1)[0], headers=service(conv_settings)
    )
    assert later.status_code == 201
    assert (await handle.describe()).run_id == description.run_id
    # A start while the saga runs joins it (USE_EXISTING, issue 12): still the one run.
    assert await start_auto_conversion(temporal_client, conv_settings, customer["id"])
    assert (await handle.describe()).run_id == description.run_id
    assert await runs_for(temporal_client, customer["id"]) == 1
    await handle.terminate("test over: no worker runs this saga here")


async def test_no_upgrade_below_the_free_limit(
    api: httpx.AsyncClient, conv_settings: Settings, temporal_client: Client
) -> None:
    customer = await convertible_customer(api, conv_settings)
    response = await api.post(
        "/v1/usage/batch",
        json={"events": calls(customer["id"], 1000)},
        headers=service(conv_settings),
    )
    assert response.json()["accepted"] == 1000
    with pytest.raises(RPCError) as missing:
        await temporal_client.get_workflow_handle(auto_upgrade_id(customer["id"])).describe()
    assert missing.value.status == RPCStatusCode.NOT_FOUND


async def test_auto_upgrade_off_is_refused_at_the_free_limit(
    api: httpx.AsyncClient, conv_settings: Settings, db_pool: asyncpg.Pool, temporal_client: Client
) -> None:
    customer = await create_customer(api, conv_settings, auto_upgrade=False)
    await attach_token(api, conv_settings, customer["id"])
    await api.post(
        "/v1/usage/batch",
        json={"events": calls(customer["id"], 1000)},
        headers=service(conv_settings),
    )
    refused = await api.post(
        "/v1/usage", json=calls(customer["id"], 1)[0], headers=service(conv_settings)
    )
    assert refused.status_code == 429
    assert await api_calls_recorded(db_pool, customer["id"]) == 1000
    with pytest.raises(RPCError):
        await temporal_client.get_workflow_handle(auto_upgrade_id(customer["id"])).describe()


async def test_temporal_down_still_records_and_retries_the_start_later(
    conv_settings: Settings, db_pool: asyncpg.Pool, redis_client: Redis
) -> None:
    down = conv_settings.model_copy(update={"temporal_address": "127.0.0.1:1"})
    async with open_api(down) as api:
        customer = await convertible_customer(api, down)
        await api.post(
            "/v1/usage/batch", json={"events": calls(customer["id"], 1000)}, headers=service(down)
        )
        crossing = await api.post(
            "/v1/usage", json=calls(customer["id"], 1)[0], headers=service(down)
        )
    assert crossing.status_code == 201
    assert await api_calls_recorded(db_pool, customer["id"]) == 1001
    # The failed start cleared its flag, so the next request over the line tries again.
    assert await redis_client.exists(f"conversion:{customer['id']}") == 0


async def test_the_converted_customer_becomes_starter(
    conv_settings: Settings,
    db_pool: asyncpg.Pool,
    temporal_client: Client,
    tmp_path: Any,
) -> None:
    from gateway_sim.app import create_app as create_gateway
    from payments.simulator import SimulatorGateway
    from worker import build_worker
    from workflows.upgrade import UpgradeWorkflow

    gateway_settings = conv_settings.model_copy(
        update={"gateway_db_path": str(tmp_path / "gateway.sqlite3")}
    )
    gateway_app = create_gateway(gateway_settings)
    transport = httpx.ASGITransport(gateway_app)
    async with (
        gateway_app.router.lifespan_context(gateway_app),
        httpx.AsyncClient(transport=transport, base_url="http://gateway") as gateway_http,
        open_api(conv_settings) as api,
    ):
        gateway = SimulatorGateway("http://gateway", client=gateway_http)
        worker = build_worker(temporal_client, conv_settings, db_pool, gateway)
        async with worker:
            customer = await convertible_customer(api, conv_settings)
            responses = await cross_the_free_limit(api, conv_settings, customer["id"])
            assert [r.status_code for r in responses] == [201] * 200
            handle = temporal_client.get_workflow_handle_for(
                UpgradeWorkflow.run, auto_upgrade_id(customer["id"])
            )
            result = await asyncio.wait_for(handle.result(), timeout=30)
            assert result.outcome == "upgraded"
            read = await api.get(f"/v1/customers/{customer['id']}", headers=service(conv_settings))
            assert read.json()["tier"] == "starter"
            after = await api.post(
                "/v1/usage", json=calls(customer["id"], 1)[0], headers=service(conv_settings)
            )
            assert after.status_code == 201
            assert after.headers["X-RateLimit-Limit"] == "10000"
    assert await api_calls_recorded(db_pool, customer["id"]) == 1101
