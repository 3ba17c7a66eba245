"""Redis stops: the limiter follows RATE_LIMIT_REDIS_DOWN; when Redis returns, its counters
are rebuilt from Postgres and the hour's limit applies as if Redis had never left.

Policy (README "Rate limiting"): `allow` records usage unchecked (Postgres is the record,
losing paid usage is worse than a short window without limits); `deny` answers 503 to
requests carrying api_call usage and writes nothing. Both run here side by side, against
the fault tests' own Redis, which is stopped for real.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime
from decimal import Decimal

import asyncpg
import httpx
from redis.asyncio import Redis

from api.app import create_app
from billing.periods import period_of
from config.settings import Settings
from store.db import create_pool
from store.limiter import hour_window
from store.rebuild import MARKER, CounterWatch
from store.usage import read_live_counters
from tests.integration.harness import serve

from .polling import until
from .servers import FaultServers
from .stack import new_database


async def _away_from_the_hour_boundary() -> None:
    """The test compares this hour's counts: do not straddle two hours."""
    now = datetime.now(UTC)
    if now.minute == 59 and now.second >= 30:
        await asyncio.sleep(61 - now.second)


@asynccontextmanager
async def _apis(
    servers: FaultServers,
) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient, str]]:
    """Two APIs on one new database, policy `allow` and policy `deny`; and the database URL."""
    database_url = await new_database(servers)
    base = Settings(
        environment="test",
        database_url=database_url,
        redis_url=servers.redis_url,
        temporal_address=servers.temporal_address,
    )
    async with AsyncExitStack() as stack:
        clients = []
        for policy in ("allow", "deny"):
            app = create_app(base.model_copy(update={"rate_limit_redis_down": policy}))
            url = await stack.enter_async_context(serve(app))
            clients.append(await stack.enter_async_context(httpx.AsyncClient(base_url=url)))
        yield clients[0], clients[1], database_url


def _auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {Settings().billing_api_key.get_secret_value()}"}


async def _customer(api: httpx.AsyncClient, tier: str) -> str:
    body = {"name": "R", "email": f"{uuid.uuid4().hex[:8]}@example.com", "tier": tier,
            "auto_upgrade": False}  # fmt: skip
    created = await api.post("/v1/customers", json=body, headers=_auth())
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


async def _use(api: httpx.AsyncClient, cid: str, kind: str, quantity: int) -> httpx.Response:
    event = {"event_id": uuid.uuid4().hex, "customer_id": cid, "kind": kind, "quantity": quantity}
    return await api.post("/v1/usage", json=event, headers=_auth())


async def _truth(pool: asyncpg.Pool, cid: str) -> tuple[int, dict[str, Decimal]]:
    """(api_calls recorded this hour, live counter fields for this period) from Postgres."""
    suffix, _ = hour_window(datetime.now(UTC))
    hour = datetime.strptime(suffix, "%Y%m%d%H").replace(tzinfo=UTC)
    calls = await pool.fetchval(
        "SELECT coalesce(sum(quantity), 0) FROM usage_events WHERE customer_id = $1"
        " AND kind = 'api_call' AND recorded_at >= $2",
        cid,
        hour,
    )
    rows = await pool.fetch(
        "SELECT kind, sum(quantity) AS q, sum(cost) AS c FROM usage_events"
        " WHERE customer_id = $1 AND period = $2 GROUP BY kind",
        cid,
        period_of(datetime.now(UTC)),
    )
    live: dict[str, Decimal] = {}
    for r in rows:
        live[f"{r['kind']}:quantity"] = Decimal(r["q"])
        live[f"{r['kind']}:cost"] = r["c"]
    return int(calls), live


async def _hour_count(redis: Redis, cid: str) -> int:
    return int(await redis.get(f"ratelimit:{cid}:{hour_window(datetime.now(UTC))[0]}") or 0)


async def test_redis_down_then_back_counters_rebuilt_from_postgres(fault_servers, figures):
    await fault_servers.ensure_all()
    await _away_from_the_hour_boundary()
    async with _apis(fault_servers) as (allow, deny, database_url):
        pool = await create_pool(database_url, min_size=1, max_size=2)
        redis = Redis.from_url(fault_servers.redis_url, socket_timeout=0.5,
                               socket_connect_timeout=0.5)  # fmt: skip
        watch = CounterWatch(pool, redis, interval_s=0.2)
        watching = asyncio.create_task(watch.run())
        try:
            free = await _customer(allow, "free")  # no payment method: limited at 1,000
            paid = await _customer(allow, "starter")
            assert (await _use(allow, free, "api_call", 600)).status_code == 201
            assert (await _use(allow, paid, "api_call", 2000)).status_code == 201
            assert (await _use(allow, paid, "llm_tokens", 10_000)).status_code == 201
            assert await _hour_count(redis, free) == 600

            await fault_servers.stop_redis()
            stopped = time.monotonic()
            slowest = 0.0
            while_down = [
                (free, "api_call", 300),
                (free, "api_call", 300),
                (paid, "llm_tokens", 5000),
                (paid, "agent_execution", 3),
            ]
            for cid, kind, q in while_down:
                sent = time.monotonic()
                answer = await _use(allow, cid, kind, q)
                slowest = max(slowest, time.monotonic() - sent)
                assert answer.status_code == 201, answer.text  # allow: recorded unchecked
            refused = await _use(deny, free, "api_call", 1)
            assert refused.status_code == 503, refused.text
            assert refused.json()["error"]["code"] == "dependency_unavailable"
            assert (await _use(deny, free, "llm_tokens", 10)).status_code == 201  # needs no Redis
            health = await allow.get("/healthz")
            assert health.status_code == 503
            assert health.json()["checks"]["redis"].startswith("down")
            assert (await _truth(pool, free))[0] == 1200  # the deny refusal wrote nothing

            rebuilds_before = watch.rebuilds
            await fault_servers.start_redis()
            back = time.monotonic()

            async def rebuilt() -> bool:
                return watch.rebuilds > rebuilds_before

            await until(rebuilt, 15, every=0.05)
            rebuilt_after = time.monotonic() - back
            assert await redis.exists(MARKER)
            for cid in (free, paid):
                calls, live = await _truth(pool, cid)
                assert await _hour_count(redis, cid) == calls
                period = period_of(datetime.now(UTC))
                assert await read_live_counters(redis, cid, period) == live
            # Over the free limit since the outage: refused at once, as if Redis had stayed.
            over = await _use(allow, free, "api_call", 1)
            assert over.status_code == 429, over.text
            assert "upgrad" in over.json()["error"]["message"]
            assert (await _use(allow, paid, "api_call", 1)).status_code == 201

            # A Redis that kept its data but missed increments: a noted outage rebuilds too.
            await redis.set(f"ratelimit:{free}:{hour_window(datetime.now(UTC))[0]}", 3)
            watch.note_unreachable()

            async def repaired() -> bool:
                return await _hour_count(redis, free) == 1200

            await until(repaired, 5, every=0.05)
            figures(
                redis_down_seconds=round(back - stopped, 1),
                slowest_usage_answer_while_down_seconds=round(slowest, 2),
                rebuilt_seconds_after_redis_back=round(rebuilt_after, 2),
                rebuilds=watch.rebuilds,
                free_calls_this_hour=1200,
            )
        finally:
            watching.cancel()
            await asyncio.gather(watching, return_exceptions=True)
            await redis.aclose()
            await pool.close()
