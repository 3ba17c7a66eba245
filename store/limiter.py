"""Hourly API-call limits in Redis: check and count in one atomic round trip.

One counter per customer per UTC clock hour (`ratelimit:{customer}:{YYYYMMDDHH}`). The Lua
script adds a quantity only if the sum stays within the limit, so concurrent requests can
never overshoot it. A reservation whose usage is then not recorded (duplicate, refused, a
failed insert) is given back, so the counter matches what Postgres holds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from redis import exceptions as redis_errors
from redis.asyncio import Redis

from billing.errors import DependencyUnavailable

# KEYS[1] the hour's counter; ARGV quantity, limit, expire-at (unix seconds).
# Returns {allowed (0/1), count after}; a refused call leaves the count unchanged. The
# expiry is set when the counter starts (a count equal to this quantity), not on every
# call: three commands on the hot path, not five (see docs/benchmarks.md, the limiter).
RESERVE_LUA = """
local qty = tonumber(ARGV[1])
local count = tonumber(redis.call('GET', KEYS[1]) or '0')
if count + qty > tonumber(ARGV[2]) then
  return {0, count}
end
count = redis.call('INCRBY', KEYS[1], qty)
if count == qty then
  redis.call('EXPIREAT', KEYS[1], tonumber(ARGV[3]))
end
return {1, count}
"""

# Give back only to a counter that still exists: after the hour rolled over there is
# nothing to return, and DECRBY would create a negative key without an expiry.
RELEASE_LUA = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local count = redis.call('DECRBY', KEYS[1], tonumber(ARGV[1]))
if count < 0 then redis.call('SET', KEYS[1], 0, 'KEEPTTL') count = 0 end
return count
"""

# Redis failures that mean "unreachable", as opposed to a bug in a command.
UNREACHABLE = (redis_errors.ConnectionError, redis_errors.TimeoutError, OSError, TimeoutError)

_EXPIRY_SLACK_S = 120  # a key outlives its hour briefly, for late give-backs and clock skew
# Only spares Temporal a start per request while a burst crosses the line together; the
# saga's id makes the conversion once. Short, so a customer downgraded back to free
# converts again on the next crossing (not "starter limits at free prices").
_CONVERSION_FLAG_TTL_S = 60


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Reservation:
    """The limiter's answer; `allowed` False means nothing was counted."""

    allowed: bool
    key: str
    quantity: int
    limit: int
    count: int
    reset_at: int  # unix seconds of the next hour: when the window starts afresh

    @property
    def remaining(self) -> int:
        return max(self.limit - self.count, 0)


def hour_window(now: datetime) -> tuple[str, int]:
    """(the hour's key suffix, unix seconds when the next hour begins) for an aware `now`."""
    hour = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return hour.strftime("%Y%m%d%H"), int((hour + timedelta(hours=1)).timestamp())


class RateLimiter:
    """Per-customer hourly counters; `clock` is injectable so tests can pin the hour."""

    def __init__(self, redis: Redis, clock: Callable[[], datetime] = _utc_now) -> None:
        self.redis = redis
        self.clock = clock
        self._reserve = redis.register_script(RESERVE_LUA)
        self._release = redis.register_script(RELEASE_LUA)
        # The current hour's (key suffix, reset at): computed once an hour instead of
        # formatting a datetime on every request.
        self._window: tuple[str, int] = ("", 0)

    def _hour(self) -> tuple[str, int]:
        now = self.clock()
        reset_at = self._window[1]
        if not reset_at - 3600 <= now.timestamp() < reset_at:
            self._window = hour_window(now)
        return self._window

    async def reserve(self, customer_id: str, quantity: int, limit: int) -> Reservation:
        """Count `quantity` if it fits under `limit` this hour; raises DependencyUnavailable."""
        suffix, reset_at = self._hour()
        key = f"ratelimit:{customer_id}:{suffix}"
        try:
            allowed, count = await self._reserve(
                keys=[key], args=[quantity, limit, reset_at + _EXPIRY_SLACK_S]
            )
        except UNREACHABLE as exc:
            raise DependencyUnavailable("the rate limiter (Redis) is unreachable") from exc
        return Reservation(bool(allowed), key, quantity, limit, int(count), reset_at)

    async def release(self, reservation: Reservation, quantity: int) -> None:
        """Give back `quantity` of an allowed reservation; raises DependencyUnavailable."""
        if not reservation.allowed or quantity <= 0:
            return
        try:
            await self._release(keys=[reservation.key], args=[quantity])
        except UNREACHABLE as exc:
            raise DependencyUnavailable("the rate limiter (Redis) is unreachable") from exc

    async def claim_conversion(self, customer_id: str) -> bool:
        """True for the first caller in a minute: saves a Temporal round trip per request."""
        try:
            claimed = await self.redis.set(
                f"conversion:{customer_id}", "1", nx=True, ex=_CONVERSION_FLAG_TTL_S
            )
        except UNREACHABLE as exc:
            raise DependencyUnavailable("the rate limiter (Redis) is unreachable") from exc
        return bool(claimed)

    async def forget_conversion(self, customer_id: str) -> None:
        """Clear the flag after a failed start, so the next request tries again."""
        try:
            await self.redis.delete(f"conversion:{customer_id}")
        except UNREACHABLE as exc:
            raise DependencyUnavailable("the rate limiter (Redis) is unreachable") from exc
