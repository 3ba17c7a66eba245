"""The limiter's lane of Redis connections: opened before traffic, dropped together once broken."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from store.redis_lane import Lane, Script

_SIZE = 4


@pytest.fixture
def named() -> str:
    return f"lane-{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def lane_redis(redis_url: str, named: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url, client_name=named)
    yield client
    await client.aclose()


@pytest.fixture
async def warmed(lane_redis: Redis) -> tuple[Lane, Script]:
    """A warmed lane of `_SIZE` connections and a script that echoes its argument."""
    lane = Lane(lane_redis, _SIZE)
    await lane.warm()
    return lane, Script(lane_redis, "return tonumber(ARGV[1])")


async def _lane_ids(admin: Redis, name: str) -> list[int]:
    return [int(c["id"]) for c in await admin.client_list() if c.get("name") == name]


async def test_warm_opens_every_connection_and_a_burst_opens_no_more(
    warmed: tuple[Lane, Script], redis_client: Redis, named: str
) -> None:
    lane, echo = warmed
    assert len(await _lane_ids(redis_client, named)) == _SIZE

    answers = await asyncio.gather(*(lane.evalsha(echo, [], [i]) for i in range(50)))

    assert answers == list(range(50))
    assert len(await _lane_ids(redis_client, named)) == _SIZE


async def test_one_broken_connection_drops_the_idle_ones_with_it(
    warmed: tuple[Lane, Script], redis_client: Redis, named: str
) -> None:
    lane, echo = warmed
    for client_id in await _lane_ids(redis_client, named):  # as if Redis had restarted
        await redis_client.execute_command("CLIENT", "KILL", "ID", client_id)

    with pytest.raises((RedisConnectionError, OSError)):
        await lane.evalsha(echo, [], [1])  # the first finds out; it cannot know if it ran
    # The next calls connect afresh instead of each trying one more dead connection.
    assert [await lane.evalsha(echo, [], [i]) for i in range(_SIZE)] == list(range(_SIZE))
