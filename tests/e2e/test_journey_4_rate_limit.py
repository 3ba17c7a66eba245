"""Journey 4: the free tier's hourly limit holds: 1,000 calls, then 429 with its headers."""

from __future__ import annotations

import time

from tests.e2e import journeys
from tests.e2e.api_client import Api


async def test_rate_limiting_protects_the_free_tier(api: Api):
    seen = await journeys.rate_limit(api)

    assert seen.answers["batch"]["accepted"] == 1_000
    over = seen.answers["over"]
    assert over.status_code == 429
    assert over.json()["error"]["code"] == "rate_limited"
    assert "upgrad" in over.json()["error"]["message"]
    assert (over.headers["X-RateLimit-Limit"], over.headers["X-RateLimit-Remaining"]) == (
        "1000", "0"
    )  # fmt: skip
    reset = int(over.headers["X-RateLimit-Reset"])
    assert time.time() < reset <= time.time() + 3600
    assert 1 <= int(over.headers["Retry-After"]) <= 3600
    # The refused call was not recorded.
    assert seen.answers["usage"]["totals"]["api_call"]["quantity"] == 1_000
    assert seen.answers["usage"]["total_cost"] == "0.00"
