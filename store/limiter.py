"""Hourly API-call limits in Redis: check and count in one atomic round trip.

One counter per customer per UTC clock hour (`ratelimit:{customer}:{YYYYMMDDHH}`). The Lua
scripts add a quantity with INCRBY and take it straight back with DECRBY when the sum
overshoots the limit, inside the script, so concurrent requests can never overshoot it and
a refusal leaves the count as it was. A reservation whose usage is then not recorded
(duplicate, refused, a failed insert) is given back, so the counter matches Postgres.

`admit` is the ingest path's one Redis round trip: every limited customer of a request
reserved, and the live usage counters (store/usage.py) bumped for what is admitted, in one
EVALSHA. The counters are bumped before Postgres records the usage and taken back
(`give_back`) for whatever it did not record, before the answer; a crash in between leaves
them high until the next rebuild (they are a cache of Postgres, store/rebuild.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from redis import exceptions as redis_errors
from redis.asyncio import Redis

from billing.errors import DependencyUnavailable
from store.redis_lane import Lane, Part, Script

# A refusal comes back as -(count + 1): one integer says allowed or not, and the count.
_COUNT = """
local function count(key, qty, limit, expire_at)
  local after = redis.call('INCRBY', key, qty)
  if after > limit then
    if after == qty then redis.call('DEL', key) else redis.call('DECRBY', key, qty) end
    return -(after - qty) - 1
  end
  if after == qty then redis.call('EXPIREAT', key, expire_at) end
  return after
end
"""

# KEYS[1] the hour's counter; ARGV quantity, limit, expire-at (unix seconds). The expiry is
# set when the counter starts (a count equal to this quantity), not on every call.
RESERVE_LUA = _COUNT + "return count(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3])"

# KEYS: n hour counters, then m live-counter hashes. ARGV: n, expire-at, live TTL; per counter
# quantity and limit; per hash its field count, then (customer, field, amount) per field,
# where customer 0 is "always" and i > 0 "only if counter i admitted its quantity". The
# counters are a cache: HINCRBY by pcall, so an amount a hash cannot hold (beyond 64 bits)
# is skipped, here and when given back, and never aborts the reservations around it.
ADMIT_LUA = (
    _COUNT
    + """
local n = tonumber(ARGV[1])
local out = {}
for i = 1, n do
  out[i] = count(KEYS[i], tonumber(ARGV[2 + 2 * i]), tonumber(ARGV[3 + 2 * i]), ARGV[2])
end
local a = 4 + 2 * n
for j = n + 1, #KEYS do
  local fields = tonumber(ARGV[a])
  a = a + 1
  for f = 1, fields do
    local who = tonumber(ARGV[a])
    if who == 0 or out[who] >= 0 then redis.pcall('HINCRBY', KEYS[j], ARGV[a + 1], ARGV[a + 2]) end
    a = a + 3
  end
  redis.call('EXPIRE', KEYS[j], ARGV[3])
end
return out
"""
)

# Give back only to a counter that still exists: after the hour rolled over there is
# nothing to return, and DECRBY would create a negative key without an expiry. KEYS: n
# counters then m hashes; ARGV: n, a quantity per counter, then per hash its field count
# and (field, amount) pairs, amounts already negative; a field taken back to zero is
# removed, as if never bumped. Amounts stay strings: Lua numbers are doubles.
GIVE_BACK_LUA = """
local n = tonumber(ARGV[1])
for i = 1, n do
  if redis.call('EXISTS', KEYS[i]) == 1 then
    if redis.call('DECRBY', KEYS[i], tonumber(ARGV[1 + i])) < 0 then
      redis.call('SET', KEYS[i], 0, 'KEEPTTL')
    end
  end
end
local a = 2 + n
for j = n + 1, #KEYS do
  local fields = tonumber(ARGV[a])
  a = a + 1
  for f = 1, fields do
    if redis.pcall('HINCRBY', KEYS[j], ARGV[a], ARGV[a + 1]) == 0 then
      redis.call('HDEL', KEYS[j], ARGV[a])
    end
    a = a + 2
  end
end
return 0
"""

# Redis failures that mean "unreachable", as opposed to a bug in a command.
UNREACHABLE = (redis_errors.ConnectionError, redis_errors.TimeoutError, OSError, TimeoutError)

# Limiter calls in flight at once, each on a connection the lane holds (store/redis_lane.py);
# the client's pool (100 by default) keeps the rest for everything else.
_LANE_SIZE = 32
_EXPIRY_SLACK_S = 120  # a key outlives its hour briefly, for late give-backs and clock skew
# Only spares Temporal a start per request while a burst crosses the line together; the
# saga's id makes the conversion once. Short, so a customer downgraded back to free
# converts again on the next crossing (not "starter limits at free prices").
_CONVERSION_FLAG_TTL_S = 60


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
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


@dataclass(frozen=True, slots=True)
class LiveBump:
    """Amounts for one live-counter hash; `who[i]` 0 or the 1-based index of the limited
    customer whose admission it depends on (its api_call usage)."""

    key: str
    fields: Sequence[tuple[int, str, int]]  # (who, field, amount)


def hour_window(now: datetime) -> tuple[str, int]:
    """(the hour's key suffix, unix seconds when the next hour begins) for an aware `now`."""
    hour = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return hour.strftime("%Y%m%d%H"), int((hour + timedelta(hours=1)).timestamp())


def _unreachable(exc: BaseException) -> DependencyUnavailable:
    return DependencyUnavailable("the rate limiter (Redis) is unreachable")


class RateLimiter:
    """Per-customer hourly counters; `clock` is injectable so tests can pin the hour."""

    def __init__(self, redis: Redis, clock: Callable[[], datetime] = _utc_now) -> None:
        self.redis = redis
        self.clock = clock
        self._lane = Lane(redis, _LANE_SIZE)
        self._reserve = Script(redis, RESERVE_LUA)
        self._admit = Script(redis, ADMIT_LUA)
        self._give_back = Script(redis, GIVE_BACK_LUA)
        # The current hour's (key suffix, reset at): computed once an hour instead of
        # formatting a datetime on every request.
        self._window: tuple[str, int] = ("", 0)

    async def warm(self) -> bool:
        """Open the limiter's connections before the first request; False if Redis is
        unreachable now (the limiter then connects on demand, as it would after a restart)."""
        try:
            await self._lane.warm()
        except UNREACHABLE:
            return False
        return True

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
            answer = await self._lane.evalsha(
                self._reserve, [key], [quantity, limit, reset_at + _EXPIRY_SLACK_S]
            )
        except UNREACHABLE as exc:
            raise _unreachable(exc) from exc
        return _reservation(key, quantity, limit, int(answer), reset_at)

    async def admit(
        self, wanted: Sequence[tuple[str, int, int]], live: Sequence[LiveBump], live_ttl_s: int
    ) -> list[Reservation]:
        """Reserve (customer, quantity, limit) each and bump `live`, in one round trip."""
        suffix, reset_at = self._hour()
        counters = [f"ratelimit:{customer_id}:{suffix}" for customer_id, _, _ in wanted]
        keys: list[Part] = list(counters)
        args: list[Part] = [len(wanted), reset_at + _EXPIRY_SLACK_S, live_ttl_s]
        for _, quantity, limit in wanted:
            args += (quantity, limit)
        for bump in live:
            keys.append(bump.key)
            args.append(len(bump.fields))
            for who, name, amount in bump.fields:
                args += (who, name, amount)
        try:
            answers = await self._lane.evalsha(self._admit, keys, args)
        except UNREACHABLE as exc:
            raise _unreachable(exc) from exc
        return [
            _reservation(key, quantity, limit, int(answer), reset_at)
            for key, (_, quantity, limit), answer in zip(counters, wanted, answers, strict=True)
        ]

    async def give_back(
        self, unused: Sequence[tuple[Reservation, int]], live: Sequence[LiveBump]
    ) -> None:
        """Return unused quantities of allowed reservations and take `live` amounts back."""
        held = [(r, q) for r, q in unused if r.allowed and q > 0]
        if not held and not live:
            return
        keys: list[Part] = [r.key for r, _ in held]
        args: list[Part] = [len(held), *(q for _, q in held)]
        for bump in live:
            keys.append(bump.key)
            args.append(len(bump.fields))
            for _, name, amount in bump.fields:
                args += (name, -amount)
        try:
            await self._lane.evalsha(self._give_back, keys, args)
        except UNREACHABLE as exc:
            raise _unreachable(exc) from exc

    async def release(self, reservation: Reservation, quantity: int) -> None:
        """Give back `quantity` of an allowed reservation; raises DependencyUnavailable."""
        await self.give_back([(reservation, quantity)], [])

    async def claim_conversion(self, customer_id: str) -> bool:
        """True for the first caller in a minute: saves a Temporal round trip per request."""
        try:
            claimed = await self.redis.set(
                f"conversion:{customer_id}", "1", nx=True, ex=_CONVERSION_FLAG_TTL_S
            )
        except UNREACHABLE as exc:
            raise _unreachable(exc) from exc
        return bool(claimed)

    async def forget_conversion(self, customer_id: str) -> None:
        """Clear the flag after a failed start, so the next request tries again."""
        try:
            await self.redis.delete(f"conversion:{customer_id}")
        except UNREACHABLE as exc:
            raise _unreachable(exc) from exc


def _reservation(key: str, quantity: int, limit: int, answer: int, reset_at: int) -> Reservation:
    allowed = answer >= 0
    count = answer if allowed else -answer - 1
    return Reservation(allowed, key, quantity, limit, count, reset_at)
