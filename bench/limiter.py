"""One limiter check against a bare Redis PING, on the same connection, interleaved.

Both go through the product's client stack (redis.asyncio, the API's timeouts); the check
is `RateLimiter.reserve` itself: the hour's key, one EVALSHA of the Lua script, the answer
parsed into a Reservation. Interleaving the two makes a noisy neighbour hit both alike.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

from redis.asyncio import Redis

from store.limiter import RateLimiter

_LIMIT = 10**12  # never refuses: the refusal path is not cheaper, only shorter
_TIMEOUT_S = 0.5  # as api/app.py's Redis client


@dataclass(frozen=True)
class LimiterResult:
    ping_us: float
    check_us: float
    samples: int

    @property
    def ratio(self) -> float:
        return self.check_us / self.ping_us


async def limiter_vs_ping(redis_url: str, samples: int, customers: int = 100) -> LimiterResult:
    redis = Redis.from_url(
        redis_url,
        socket_timeout=_TIMEOUT_S,
        socket_connect_timeout=_TIMEOUT_S,
        single_connection_client=True,
    )
    limiter = RateLimiter(redis)
    pings: list[float] = []
    checks: list[float] = []
    try:
        for n in range(-min(samples, 500), samples):  # the first 500 (negative) warm up
            cid = f"cus_limiter{n % customers:04d}"
            began = time.perf_counter()
            await redis.ping()
            between = time.perf_counter()
            await limiter.reserve(cid, 1, _LIMIT)
            ended = time.perf_counter()
            if n >= 0:
                pings.append(between - began)
                checks.append(ended - between)
    finally:
        await redis.aclose()
    return LimiterResult(
        ping_us=statistics.median(pings) * 1e6,
        check_us=statistics.median(checks) * 1e6,
        samples=samples,
    )
