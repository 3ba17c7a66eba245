"""The benchmarks in order; one that fails is recorded and the others still run."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from bench import data, ingest
from bench.harness import Bench
from bench.run_load import bench_ingest, bench_limiter, bench_open_loop, bench_single
from bench.run_sagas import bench_month_close, bench_sagas

log = logging.getLogger("bench")

BENCHMARKS = ("limiter", "ingest", "single", "open_loop", "sagas", "month_close")


async def run_all(b: Bench) -> None:
    """Each benchmark in turn; one that fails is recorded and the others still run."""
    recent = datetime.now(UTC) - timedelta(days=40)
    keys: dict[str, str] = {}  # customer id -> its own API key
    if b.only & {"ingest", "single", "open_loop"}:
        keys = await data.create_keyed_customers(
            b.pool, "in", 100, tier=ingest.TIER, started_at=recent
        )
    steps: dict[str, Callable[[], Awaitable[None]]] = {
        "limiter": lambda: bench_limiter(b),
        "ingest": lambda: bench_ingest(b, list(keys)),
        "single": lambda: bench_single(b, keys),
        "open_loop": lambda: bench_open_loop(b, keys),
        "sagas": lambda: bench_sagas(b),
        "month_close": lambda: bench_month_close(b),
    }
    for name, step in steps.items():
        if name not in b.only:
            continue
        try:
            await step()
        except Exception as exc:  # a benchmark that breaks must not lose the others' figures
            log.exception("benchmark %s failed", name)
            b.errors[name] = f"{type(exc).__name__}: {exc}"
