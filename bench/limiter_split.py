"""Where a limiter check's time goes beyond a bare PING: `python -m bench.limiter_split`.

Four calls on one connection, in a rotating order, 20,000 samples each after 500 of
warm-up, against a private Redis run as `make bench` runs it: a PING sent as prepared
bytes (the round trip), an EVALSHA of `return 1` (Lua's invocation), the limiter script
called with prepared arguments (its commands), and `RateLimiter.reserve` (plus the
hour's key, the RESP bytes and the Reservation: Python). Prints each median and its
ratio to the PING.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
from functools import partial
from pathlib import Path

from redis.asyncio import Redis

from bench.limiter import Call, timed_in_turn
from store.limiter import RESERVE_LUA, RateLimiter
from store.redis_lane import Lane, Script

SAMPLES = 20_000
WARM_UP = 500
_NEVER = 10**12  # a limit never reached: the allowed path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def split(redis: Redis) -> dict[str, float]:
    limiter = RateLimiter(redis)
    lane = Lane(redis, 1)
    one = Script(redis, "return 1")
    reserve = Script(redis, RESERVE_LUA)
    key = b"ratelimit:cus_split:2026120100"
    calls: dict[str, Call] = {
        "PING (prepared bytes)": lane.ping,
        "EVALSHA 'return 1'": partial(lane.evalsha, one, [], []),
        "EVALSHA limiter script": partial(lane.evalsha, reserve, [key], [1, _NEVER, 2**31]),
        "RateLimiter.reserve": partial(limiter.reserve, "cus_split", 1, _NEVER),
    }
    found = await timed_in_turn(lambda n: calls, SAMPLES, WARM_UP)
    return {name: statistics.median(times) for name, times in found.items()}


async def main() -> None:
    server = shutil.which("redis-server", path=str(Path(sys.executable).parent))
    if server is None:
        raise SystemExit("redis-server not found beside this Python: `make install`")
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="limiter-split-") as folder:
        argv = [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "yes", "--appendfsync", "everysec", "--dir", folder]  # fmt: skip
        proc = await asyncio.create_subprocess_exec(*argv, stdout=subprocess.DEVNULL)
        try:
            redis = Redis.from_url(f"redis://127.0.0.1:{port}/0", single_connection_client=True)
            for _ in range(50):
                try:
                    await redis.ping()
                    break
                except OSError:
                    await asyncio.sleep(0.1)
            medians = await split(redis)
            await redis.aclose()
        finally:
            proc.terminate()
            await asyncio.wait_for(proc.wait(), 10)
    ping = next(iter(medians.values()))
    for name, median in medians.items():
        sys.stdout.write(f"{name:24s} {median * 1e6:7.1f} us  {median / ping:.3f} x PING\n")


if __name__ == "__main__":
    asyncio.run(main())
