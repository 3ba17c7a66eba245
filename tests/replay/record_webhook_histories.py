"""Records the outbound webhook histories afresh (run with `make replay-record`'s pytest).

The delivery of an event retried after two 500s, a delivery that exhausts its schedule
and disables its endpoint, and a dispatcher round (terminated: it never ends by itself).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client

from billing.outbound import delivery_id, dispatcher_id
from tests.integration.harness import LiveStack
from tests.integration.webhook_receiver import Receiver, eventually, receiving, webhook_stack

HISTORIES = Path(__file__).parent / "histories"


@pytest.fixture
async def stack(settings, db_pool, temporal_client, tmp_path) -> AsyncIterator[LiveStack]:
    async with webhook_stack(settings, db_pool, temporal_client, tmp_path) as live:
        yield live


async def _closed(handle: Any) -> bool:
    return (await handle.describe()).close_time is not None


async def save(temporal: Client, name: str, *workflow_ids: str) -> None:
    records = []
    for workflow_id in workflow_ids:
        handle = temporal.get_workflow_handle(workflow_id)
        await eventually(lambda h=handle: _closed(h), within_s=60)
        history = await handle.fetch_history()
        records.append({"workflow_id": workflow_id, "history": json.loads(history.to_json())})
    (HISTORIES / f"{name}.json").write_text(json.dumps(records, indent=1) + "\n")


async def deliver_one(live: LiveStack, receiver: Receiver) -> tuple[str, str]:
    made = await live.api.post(
        "/v1/webhook-endpoints",
        json={"url": receiver.url, "events": ["customer.created"]},
        headers=live.auth,
    )
    endpoint_id = made.json()["id"]
    body = {"name": "Replay", "email": f"{uuid.uuid4().hex[:8]}@example.com"}
    customer_id = (await live.api.post("/v1/customers", json=body, headers=live.auth)).json()["id"]
    page = await live.api.get("/v1/events", params={"customer_id": customer_id}, headers=live.auth)
    return page.json()["events"][0]["id"], endpoint_id


async def test_record_delivered_after_retries(stack: LiveStack, temporal_client: Client) -> None:
    async with receiving(Receiver(status=lambda n: 500 if n <= 2 else 200)) as receiver:
        event_id, endpoint_id = await deliver_one(stack, receiver)
        await eventually(lambda: asyncio.sleep(0, len(receiver.received) == 3))
        dispatcher = dispatcher_id(stack.settings.task_queue)
        await temporal_client.get_workflow_handle(dispatcher).terminate("recorded")
        await save(
            temporal_client,
            "webhook_delivered_after_retries",
            delivery_id(event_id, endpoint_id),
            dispatcher,
        )


async def test_record_endpoint_disabled(stack: LiveStack, temporal_client: Client) -> None:
    async with receiving(Receiver(status=lambda n: 500)) as receiver:
        event_id, endpoint_id = await deliver_one(stack, receiver)
        await eventually(lambda: asyncio.sleep(0, len(receiver.received) == 4))
        await save(temporal_client, "webhook_endpoint_disabled", delivery_id(event_id, endpoint_id))
