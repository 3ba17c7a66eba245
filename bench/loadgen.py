"""HTTP load generators on aiohttp: closed loop for throughput, open loop for latency.

Closed loop (`post_all`): `concurrency` clients, each sends its next request when the last
one answered. It finds the saturation rate, but a slow answer also delays the requests
behind it, so its latencies understate queueing ("coordinated omission").

Open loop (`post_open_loop`): requests are due at a fixed arrival rate whatever the server
does, and each latency runs from the moment the request was *due*, not from when it got a
connection or left the client. A server that falls behind sees its queue in the figure.
No library fits that here: locust's users are closed loops (its `constant_throughput`
waits for the answer before the next wait), wrk2 and vegeta are binaries no package
registry this project installs from carries, and a loop of `asyncio.sleep` to each due
time on uvloop keeps up with a few thousand requests a second on one core. The largest
lag between a due time and the actual send is reported beside every run, so a client
that falls behind shows (and its lateness counts against the product, never for it).

Why aiohttp: the bodies are JSON POSTs whose content differs per request (every event id is
new), which a Python client does simply; and on this machine aiohttp's client spends about
80 µs of CPU per request where httpx spends about 1,700 µs (both measured against a trivial
ASGI app, 16 connections), so httpx would bound the figure by itself.

Bodies and headers are built before the clock starts, so the client spends its time on
HTTP only, and the client's own CPU time is reported beside each figure.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import aiohttp

_TIMEOUT = aiohttp.ClientTimeout(total=30.0)
_JSON = {"content-type": "application/json"}


class Request(NamedTuple):
    """One POST: its body and its own headers (the caller's key)."""

    body: bytes
    headers: Mapping[str, str]


@dataclass(frozen=True)
class LoadResult:
    """Per-request latencies (seconds) of the requests that answered as expected."""

    latencies: list[float]
    errors: int
    first_error: str
    elapsed_s: float
    client_cpu_s: float
    max_send_lag_s: float = 0.0  # open loop: the latest a request left after it was due
    # Open loop: how long each request that never answered (timed out, connection lost)
    # had waited when it gave up; counted in the percentiles, never dropped from them.
    unanswered: list[float] = field(default_factory=list)

    @property
    def ok(self) -> int:
        return len(self.latencies)

    @property
    def per_s(self) -> float:
        return self.ok / self.elapsed_s if self.elapsed_s > 0 else 0.0


class _Tally:
    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.unanswered: list[float] = []
        self.errors = 0
        self.first_error = ""

    async def post(
        self, session: aiohttp.ClientSession, url: str, req: Request, since: float,
        expect: frozenset[int],
    ) -> None:  # fmt: skip
        """POST `req`; its latency runs from `since` to the last byte of the answer."""
        try:
            async with session.post(url, data=req.body, headers=req.headers) as answer:
                text = await answer.read()
                status = answer.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            self.unanswered.append(time.perf_counter() - since)
            self.errors += 1
            self.first_error = self.first_error or repr(exc)
            return
        took = time.perf_counter() - since
        if status in expect:
            self.latencies.append(took)
        else:
            self.errors += 1
            self.first_error = self.first_error or f"{status} {text[:300]!r}"


async def _warm(session: aiohttp.ClientSession, url: str, connections: int) -> None:
    # One request per connection first: connection set-up is not what is measured.
    health = url.split("/v1/", 1)[0] + "/healthz"

    async def get() -> None:
        async with session.get(health) as answer:
            await answer.read()

    await asyncio.gather(*(get() for _ in range(connections)))


def _session(connections: int) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(limit=connections)
    return aiohttp.ClientSession(connector=connector, timeout=_TIMEOUT, headers=_JSON)


async def post_all(
    url: str,
    requests: Sequence[Request],
    *,
    concurrency: int,
    expect: frozenset[int] = frozenset({200, 201}),
    deadline_s: float = 120.0,
) -> LoadResult:
    """Closed loop: every request once, `concurrency` in flight; stops early at `deadline_s`."""
    tally = _Tally()
    next_index = 0
    async with _session(concurrency) as session:
        await _warm(session, url, concurrency)

        async def one_client(stop_at: float) -> None:
            nonlocal next_index
            while next_index < len(requests) and time.perf_counter() < stop_at:
                req = requests[next_index]
                next_index += 1
                await tally.post(session, url, req, time.perf_counter(), expect)

        cpu0, began = time.process_time(), time.perf_counter()
        await asyncio.gather(*(one_client(began + deadline_s) for _ in range(concurrency)))
        elapsed = time.perf_counter() - began
        cpu = time.process_time() - cpu0
    return LoadResult(tally.latencies, tally.errors, tally.first_error, elapsed, cpu)


async def post_open_loop(
    url: str,
    requests: Sequence[Request],
    *,
    rate: float,
    connections: int,
    expect: frozenset[int] = frozenset({200, 201}),
) -> LoadResult:
    """Open loop: request n is due at start + n / rate; its latency is measured from then.

    At most `connections` are open; a request due while all are busy waits for one, and
    that wait is part of its latency, as a user's would be.
    """
    tally = _Tally()
    async with _session(connections) as session:
        await _warm(session, url, connections)
        loop = asyncio.get_running_loop()
        sent: set[asyncio.Task[None]] = set()
        max_lag = 0.0
        cpu0 = time.process_time()
        began = time.perf_counter() + 0.01
        for n, req in enumerate(requests):
            due = began + n / rate
            if (wait := due - time.perf_counter()) > 0:
                await asyncio.sleep(wait)
            max_lag = max(max_lag, time.perf_counter() - due)
            task = loop.create_task(tally.post(session, url, req, due, expect))
            sent.add(task)
            task.add_done_callback(sent.discard)
        await asyncio.gather(*sent)
        elapsed = time.perf_counter() - began
        cpu = time.process_time() - cpu0
    return LoadResult(
        tally.latencies, tally.errors, tally.first_error, elapsed, cpu, max_lag, tally.unanswered
    )


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100): always a value that was actually observed."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = min(len(ordered), max(1, math.ceil(q / 100 * len(ordered))))
    return ordered[rank - 1]


def pooled(results: Sequence[LoadResult]) -> list[float]:
    """Every latency of every run, as one sample: percentiles over it, not medians of them.
    A request that never answered counts with the time it waited before giving up."""
    return [t for result in results for t in (*result.latencies, *result.unanswered)]
