"""Redis's counters rebuilt from Postgres, the record, when Redis comes back from an outage.

Redis holds two caches of what `usage_events` says: this hour's limiter windows
(`ratelimit:{customer}:{YYYYMMDDHH}`, the api_call quantity recorded this UTC hour) and
the live per-period counters (`usage:{customer}:{period}`, quantity and cost per kind).
After an outage they are short: a Redis restarted empty lost them, and under the `allow`
policy usage was recorded unchecked while Redis was unreachable. `rebuild_counters` sets
both to what Postgres holds, so the limit applies for the rest of the hour as if Redis had
never left.

When it runs: `CounterWatch.run` looks at Redis every second from the API process. It
rebuilds when the marker key `counters:rebuilt` is missing (a new or emptied Redis) or
after it saw Redis unreachable, then writes the marker. `python -m store.rebuild` runs it
once by hand. A request recording usage during the rebuild itself (milliseconds) may be
counted once too often or too rarely; the next rebuild, or the next hour, puts it right.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import asyncpg
from redis.asyncio import Redis

from billing.periods import period_of
from store.limiter import _EXPIRY_SLACK_S, UNREACHABLE, hour_window
from store.usage import _LIVE_TTL_S, COST_SCALE, live_key

if TYPE_CHECKING:
    from config.settings import Settings

log = logging.getLogger("store.rebuild")

MARKER = "counters:rebuilt"
_CHUNK = 500  # keys per pipeline: bounded memory and round trips

HOUR_API_CALLS = """
SELECT customer_id, sum(quantity)::bigint AS quantity FROM usage_events
WHERE kind = 'api_call' AND recorded_at >= $1::timestamptz AND recorded_at < $2::timestamptz
GROUP BY customer_id"""

# Every period a live counter can still exist for: they expire 100 days after their last use.
PERIOD_TOTALS = """
SELECT customer_id, period::text AS period, kind,
       sum(quantity)::bigint AS quantity, sum(cost) AS cost
FROM usage_events WHERE period >= $1::text
GROUP BY customer_id, period, kind"""


@dataclass(frozen=True)
class Rebuilt:
    """How many keys were set, and how many stale ones removed."""

    hour_windows: int
    live_counters: int
    removed: int


def _utc_now() -> datetime:
    return datetime.now(UTC)


async def _set_windows(redis: Redis, windows: dict[str, int], expire_at: int) -> None:
    for start in range(0, len(windows), _CHUNK):
        pipe = redis.pipeline(transaction=False)
        for key in list(windows)[start : start + _CHUNK]:
            pipe.set(key, windows[key], exat=expire_at)
        await pipe.execute()


async def _replace_hashes(redis: Redis, hashes: dict[str, dict[str, int]]) -> None:
    """Each hash deleted and written again inside MULTI: no reader sees half of one."""
    keys = list(hashes)
    for start in range(0, len(keys), _CHUNK):
        pipe = redis.pipeline(transaction=True)
        for key in keys[start : start + _CHUNK]:
            pipe.delete(key)
            pipe.hset(key, mapping=hashes[key])  # type: ignore[arg-type]  # invariant key type
            pipe.expire(key, _LIVE_TTL_S)
        await pipe.execute()


async def _remove_stale(redis: Redis, pattern: str, keep: set[str], floor: str | None) -> int:
    stale: list[str] = []
    async for raw in redis.scan_iter(match=pattern, count=1000):
        key = raw.decode() if isinstance(raw, bytes) else str(raw)
        if key in keep or (floor is not None and key.rsplit(":", 1)[-1] < floor):
            continue
        stale.append(key)
    for start in range(0, len(stale), _CHUNK):
        await redis.delete(*stale[start : start + _CHUNK])
    return len(stale)


async def rebuild_counters(pool: asyncpg.Pool, redis: Redis, now: datetime) -> Rebuilt:
    """Set this hour's limiter windows and the live counters to what Postgres holds."""
    suffix, reset_at = hour_window(now)
    hour = datetime.strptime(suffix, "%Y%m%d%H").replace(tzinfo=UTC)
    floor = period_of(now - timedelta(seconds=_LIVE_TTL_S))
    calls = await pool.fetch(HOUR_API_CALLS, hour, hour + timedelta(hours=1))
    totals = await pool.fetch(PERIOD_TOTALS, floor)

    windows = {f"ratelimit:{r['customer_id']}:{suffix}": int(r["quantity"]) for r in calls}
    live: dict[str, dict[str, int]] = defaultdict(dict)
    for r in totals:
        key = live_key(r["customer_id"], r["period"])
        live[key][f"{r['kind']}:quantity"] = int(r["quantity"])
        live[key][f"{r['kind']}:cost"] = int(r["cost"].scaleb(COST_SCALE))  # numeric(30,10)
    await _set_windows(redis, windows, reset_at + _EXPIRY_SLACK_S)
    await _replace_hashes(redis, dict(live))
    removed = await _remove_stale(redis, f"ratelimit:*:{suffix}", set(windows), None)
    removed += await _remove_stale(redis, "usage:*", set(live), floor)
    await redis.set(MARKER, now.isoformat())
    return Rebuilt(hour_windows=len(windows), live_counters=len(live), removed=removed)


class CounterWatch:
    """Rebuilds the counters whenever Redis comes back; one per API process."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        redis: Redis,
        *,
        clock: Callable[[], datetime] = _utc_now,
        interval_s: float = 1.0,
    ) -> None:
        self.pool = pool
        self.redis = redis
        self.clock = clock
        self.interval_s = interval_s
        self.was_down = False
        self.rebuilds = 0
        self._stopping = asyncio.Event()

    def note_unreachable(self) -> None:
        """A request found Redis away: rebuild once it answers again."""
        self.was_down = True

    async def check_once(self) -> Rebuilt | None:
        """One look at Redis; the rebuild's figures when it rebuilt, else None."""
        try:
            marked = bool(await self.redis.exists(MARKER))
        except UNREACHABLE:
            self.was_down = True
            return None
        if marked and not self.was_down:
            return None
        try:
            rebuilt = await rebuild_counters(self.pool, self.redis, self.clock())
        except UNREACHABLE:
            self.was_down = True
            return None
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            log.warning("counter rebuild postponed: Postgres did not answer")
            return None
        self.was_down = False
        self.rebuilds += 1
        log.info("Redis counters rebuilt from Postgres: %s", rebuilt)
        return rebuilt

    def stop(self) -> None:
        """Ask `run` to return; it does so before its next look."""
        self._stopping.set()

    async def run(self) -> None:
        """Look every `interval_s` until `stop()`; an unexpected error is logged, not fatal.

        Stopped by a flag, not only by cancelling the task: a cancel that lands inside a
        client library's I/O can be swallowed there (seen in CI: the task kept looping
        "cancelling" and the API's shutdown waited on it for ever).
        """
        while not self._stopping.is_set():
            try:
                await self.check_once()
            except Exception:
                log.exception("counter watch failed; trying again")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.interval_s)


async def _main(settings: Settings) -> None:
    from store.db import create_pool

    pool = await create_pool(settings.database_url, min_size=1, max_size=2)
    redis = Redis.from_url(settings.redis_url)
    try:
        rebuilt = await rebuild_counters(pool, redis, _utc_now())
        log.info("rebuilt %s", rebuilt)
    finally:
        await redis.aclose()
        await pool.close()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    from config.settings import Settings

    asyncio.run(_main(Settings()))  # the process's one Settings, passed down
