"""The harness the benchmarks share: their sizes, the running stack, CPU accounting.

Per repetition a benchmark records its figure, its baseline, and where the CPU went (per
process tree, per unit of work, and how much other programs took), so a noisy neighbour
shows in the results instead of hiding in them.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Awaitable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
from temporalio.client import Client

from bench.cpu import CpuSnapshot, CpuUsage, snapshot, used
from bench.profile import recording
from bench.stack import Stack
from billing.settings import Settings

T = TypeVar("T")
log = logging.getLogger("bench")
RunRecord = dict[str, Any]


@dataclass(frozen=True)
class Sizes:
    """How much each benchmark does; every loop below is bounded by these and a deadline."""

    runs: int
    batches: int  # of 1,000 events, per run
    single_requests: int
    single_concurrency: int
    limiter_samples: int
    saga_cycles: int
    month_close_customers: int
    month_close_runs: int
    deadline_s: float  # per run of the saga benchmark
    month_close_deadline_s: float  # per month close, and again per floor


# About 25-30 minutes on 2 quiet cores, most of it the 10,000-customer month close and its
# floor (docs/benchmarks.md, "How long it takes").
FULL = Sizes(3, 100, 10_000, 16, 20_000, 300, 10_000, 1, 600.0, 2_400.0)
QUICK = Sizes(2, 20, 2_000, 16, 2_000, 100, 1_000, 1, 300.0, 600.0)
TINY = Sizes(1, 5, 300, 16, 300, 20, 100, 1, 120.0, 120.0)  # checks that everything runs


@dataclass
class Bench:
    stack: Stack
    client: Client
    pool: asyncpg.Pool
    sizes: Sizes
    profile_dir: Path | None
    only: set[str]
    figures: dict[str, float] = field(default_factory=dict)
    runs: dict[str, list[RunRecord]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def settings(self) -> Settings:
        return self.stack.settings

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.settings.billing_api_key.get_secret_value()}"}

    def trees(self) -> dict[str, int]:
        pg, redis, temporal = (s.process.pid for s in self.stack.servers)
        trees = {"postgres": pg, "redis": redis, "temporal": temporal}
        return trees | {name: proc.pid for name, proc in self.stack.children.items()}

    def _snapshot(self) -> CpuSnapshot:
        # This process is every server's parent: count it alone, not as a tree.
        return snapshot(self.trees(), {"load generator": os.getpid()})

    async def measured(self, work: Awaitable[T]) -> tuple[T, CpuUsage]:
        before = self._snapshot()
        result = await work
        return result, used(before, self._snapshot())

    def profiled(self, name: str, process: str) -> contextlib.AbstractAsyncContextManager[None]:
        if self.profile_dir is None:
            return contextlib.nullcontext()
        return recording(self.stack.pid(process), self.profile_dir / f"{name}-{process}.txt")

    def log(self, line: str) -> None:
        log.info("%s", line)


def cpu_record(usage: CpuUsage, units: int, per: str) -> RunRecord:
    return {
        f"cpu_ms_per_{per}": usage.per_unit_ms(units),
        f"our_cpu_ms_per_{per}": round(usage.ours_ms(units), 3),
        "machine_busy_fraction": round(usage.busy_fraction(), 3),
    }


def cpu_ratio(baseline: CpuUsage, measured: CpuUsage) -> float:
    """Baseline CPU / measured CPU for the same work: the ratio a quiet machine would show
    if both were bound by CPU alone, whatever other programs took meanwhile."""
    spent = sum(measured.per_tree.values())
    return round(sum(baseline.per_tree.values()) / spent, 4) if spent else float("nan")
