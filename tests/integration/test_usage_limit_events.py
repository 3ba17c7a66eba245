"""usage.limit_warning at 80% of the hour's API-call limit, usage.limit_reached at 100%:
each written once per customer and window, with the usage that crossed the line."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from .harness import LiveStack, live_stack


@pytest.fixture
async def stack(settings, db_pool, temporal_client, tmp_path) -> AsyncIterator[LiveStack]:
    async with live_stack(settings, db_pool, temporal_client, tmp_path) as live:
        yield live


async def calls(live: LiveStack, customer_id: str, quantity: int) -> int:
    event = {"event_id": uuid.uuid4().hex, "customer_id": customer_id, "kind": "api_call",
             "quantity": quantity}  # fmt: skip
    answer = await live.api.post("/v1/usage", json=event, headers=live.auth)
    return answer.status_code


async def events(live: LiveStack, customer_id: str, kind: str) -> list[dict[str, Any]]:
    page = await live.api.get(
        "/v1/events", params={"customer_id": customer_id, "type": kind}, headers=live.auth
    )
    assert page.status_code == 200, page.text
    return list(page.json()["events"])


async def test_the_hour_s_limit_is_announced_once_at_80_and_once_at_100(stack: LiveStack):
    # Free, no card: it cannot convert, so its limit is the free 1,000 an hour.
    body = {"name": "Limit", "email": f"{uuid.uuid4().hex[:8]}@example.com", "tier": "free"}
    cid = (await stack.api.post("/v1/customers", json=body, headers=stack.auth)).json()["id"]
    assert await calls(stack, cid, 700) == 201
    assert await events(stack, cid, "usage.limit_warning") == []
    assert await calls(stack, cid, 150) == 201  # 850: past 80%
    assert await calls(stack, cid, 50) == 201  # 900: still past it, no second warning
    (warning,) = await events(stack, cid, "usage.limit_warning")
    assert (warning["data"]["limit"], warning["data"]["used"]) == (1000, 850)
    assert await events(stack, cid, "usage.limit_reached") == []
    assert await calls(stack, cid, 200) == 429  # refused: the limit is reached
    assert await calls(stack, cid, 1) == 201  # 901 still fits
    assert await calls(stack, cid, 500) == 429
    (reached,) = await events(stack, cid, "usage.limit_reached")
    assert (reached["data"]["tier"], reached["data"]["refused"]) == ("free", 200)
    assert len(await events(stack, cid, "usage.limit_warning")) == 1
