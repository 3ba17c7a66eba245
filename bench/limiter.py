"""One limiter check against a bare Redis PING, interleaved pair by pair on one client.

The check is `RateLimiter.reserve` itself: the hour's key, one EVALSHA of the Lua script,
the answer parsed into a Reservation. Each pair is a PING then a check on the same client,
so a noisy neighbour hits both alike.

Two clients. The headline figure uses a dedicated connection (`single_connection_client`)
for both, the API's timeouts but not its connection pool: the strictest comparison, a
round trip against a round trip. The second is built as api/app.py builds its client
(`Redis.from_url` with its connection pool); there both sides also pay the pool's
checkout and release, so its ratio is a little closer to 1 and is reported beside.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass

from redis.asyncio import Redis

from store.limiter import RateLimiter

_LIMIT = 10**12  # never refuses: the refusal path is not cheaper, only shorter
_TIMEOUT_S = 0.5  # as api/app.py's Redis client
_WARM_UP = 500


@dataclass(frozen=True)
class LimiterResult:
    """Seconds per PING and per check, pair by pair."""

    pings: list[float]
    checks: list[float]

    @property
    def ping_us(self) -> float:
        return statistics.median(self.pings) * 1e6

    @property
    def check_us(self) -> float:
        return statistics.median(self.checks) * 1e6

    @property
    def ratio(self) -> float:
        return self.check_us / self.ping_us


def pooled(results: Sequence[LimiterResult]) -> LimiterResult:
    """Every pair of every run as one sample: the ratio of the pooled medians."""
    return LimiterResult(
        [p for r in results for p in r.pings], [c for r in results for c in r.checks]
    )


async def limiter_vs_ping(
    redis_url: str, samples: int, *, single_connection: bool, customers: int = 100
) -> LimiterResult:
    redis = Redis.from_url(
        redis_url,
        socket_timeout=_TIMEOUT_S,
        socket_connect_timeout=_TIMEOUT_S,
        single_connection_client=single_connection,
    )
    limiter = RateLimiter(redis)
    pings: list[float] = []
    checks: list[float] = []
    try:
        for n in range(-min(samples, _WARM_UP), samples):  # negative n: warm-up, not kept
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
    return LimiterResult(pings, checks)
