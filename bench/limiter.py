"""One limiter check against a bare Redis PING, interleaved sample by sample.

The check is `RateLimiter.reserve` itself: the hour's key, one EVALSHA of the Lua script
written as prepared bytes on the limiter's own connection (store/redis_lane.py), the
answer parsed into a Reservation. Its baseline is a PING sent the same way (a `Lane` of
one connection, the command as prepared bytes, one reply read): the same transport, so
the ratio is what the script and its arguments cost beyond one round trip, and a noisy
neighbour hits both alike.

Beside it, the same check against redis-py's own `ping()` on a dedicated connection
(`single_connection_client`, the API's timeouts): the client's command path (pool
checkout, health probe, retry wrapper, argument packing) is dearer than the lane's, so
that ratio says what the lane saves, not how close the check is to a round trip. Each
sample runs the three calls in a rotating order.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import partial

from redis.asyncio import Redis

from store.limiter import RateLimiter
from store.redis_lane import Lane

_LIMIT = 10**12  # never refuses: the refusal path is not cheaper, only shorter
_TIMEOUT_S = 0.5  # as api/app.py's Redis client
_WARM_UP = 500


@dataclass(frozen=True)
class LimiterResult:
    """Seconds per bare PING, per limiter check and per redis-py PING, sample by sample."""

    pings: list[float]
    checks: list[float]
    client_pings: list[float]

    @property
    def ping_us(self) -> float:
        return statistics.median(self.pings) * 1e6

    @property
    def check_us(self) -> float:
        return statistics.median(self.checks) * 1e6

    @property
    def client_ping_us(self) -> float:
        return statistics.median(self.client_pings) * 1e6

    @property
    def ratio(self) -> float:
        return self.check_us / self.ping_us

    @property
    def client_ratio(self) -> float:
        return self.check_us / self.client_ping_us


def pooled(results: Sequence[LimiterResult]) -> LimiterResult:
    """Every sample of every run as one: the ratios of the pooled medians."""
    return LimiterResult(
        [p for r in results for p in r.pings],
        [c for r in results for c in r.checks],
        [p for r in results for p in r.client_pings],
    )


Call = Callable[[], Awaitable[object]]


async def timed_in_turn(
    calls: Callable[[int], dict[str, Call]], samples: int, warm_up: int
) -> dict[str, list[float]]:
    """Seconds per call, by name: sample n runs `calls(n)` once each, in an order rotated
    by n (so none always runs first), after `warm_up` samples that are not kept."""
    found: dict[str, list[float]] = {}
    for n in range(-warm_up, samples):
        named = calls(n)
        names = list(named)
        shift = n % len(names)
        for name in names[shift:] + names[:shift]:
            began = time.perf_counter()
            await named[name]()
            if n >= 0:
                found.setdefault(name, []).append(time.perf_counter() - began)
    return found


async def limiter_vs_ping(redis_url: str, samples: int, *, customers: int = 100) -> LimiterResult:
    redis = Redis.from_url(
        redis_url,
        socket_timeout=_TIMEOUT_S,
        socket_connect_timeout=_TIMEOUT_S,
        single_connection_client=True,
    )
    limiter = RateLimiter(redis)
    bare = Lane(redis, 1)

    def calls(n: int) -> dict[str, Call]:
        return {
            "ping": bare.ping,
            "check": partial(limiter.reserve, f"cus_limiter{n % customers:04d}", 1, _LIMIT),
            "client_ping": redis.ping,
        }

    try:
        found = await timed_in_turn(calls, samples, min(samples, _WARM_UP))
    finally:
        await redis.aclose()
    return LimiterResult(found["ping"], found["check"], found["client_ping"])
