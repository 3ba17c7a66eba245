"""The harness the benchmarks share: their sizes, the running stack, CPU accounting.

Per repetition a benchmark records its figure, its baseline, and where the CPU went (per
process tree, per unit of work, and how much other programs took), so a noisy neighbour
shows in the results instead of hiding in them.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
from temporalio.client import Client

from bench.cpu import CpuSnapshot, CpuUsage, snapshot, used
from bench.floor_io import FloorShape
from bench.profile import Profile, recording
from bench.stack import Stack
from config.settings import Settings

T = TypeVar("T")
log = logging.getLogger("bench")
RunRecord = dict[str, Any]


@dataclass(frozen=True)
class Sizes:
    """How much each benchmark does; every loop below is bounded by these and a deadline."""

    runs: int  # rounds of each benchmark; the sagas round it up to an even number (ABBA)
    batches: int  # of 1,000 events, per run
    single_requests: int
    single_concurrency: int
    limiter_samples: int
    saga_cycles: int
    month_close_customers: int
    month_close_runs: int  # each a product half and a floor half, the order alternating
    deadline_s: float  # per run of the saga benchmark
    month_close_deadline_s: float  # per month close, and again per floor
    open_loop_rate: float = 1_500.0  # requests due per second, whatever the answers do
    open_loop_s: float = 10.0  # per run
    open_loop_connections: int = 64


# About 55 minutes on 2 quiet cores, most of it two 10,000-customer month closes and their
# floors (docs/benchmarks.md, "How long it takes").
FULL = Sizes(3, 100, 10_000, 16, 20_000, 300, 10_000, 2, 600.0, 2_400.0)
QUICK = Sizes(2, 20, 2_000, 16, 2_000, 100, 1_000, 2, 300.0, 600.0, open_loop_s=5.0)
TINY = Sizes(1, 5, 300, 16, 300, 20, 100, 1, 120.0, 120.0, open_loop_s=1.0)  # does it all run?


@dataclass
class Bench:
    stack: Stack
    client: Client
    pool: asyncpg.Pool
    sizes: Sizes
    profile_dir: Path | None  # None: nothing is profiled
    only: set[str]
    profile: set[str] = field(default_factory=set)  # the benchmarks given a profiled run
    figures: dict[str, float] = field(default_factory=dict)
    runs: dict[str, list[RunRecord]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    profiles: dict[str, Profile] = field(default_factory=dict)  # by `{name}-{process}`
    shape: FloorShape | None = None  # a paid billing cycle's, counted once from its history

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

    def profiling(self, benchmark: str) -> bool:
        return self.profile_dir is not None and benchmark in self.profile

    def profiled(self, name: str, process: str) -> contextlib.AbstractAsyncContextManager[None]:
        if self.profile_dir is None:
            return contextlib.nullcontext()
        out = self.profile_dir / f"{name}-{process}.txt"
        return recording(self.stack.pid(process), out, self.profiles)

    def log(self, line: str) -> None:
        log.info("%s", line)


def cpu_record(usage: CpuUsage, units: int, per: str) -> RunRecord:
    return {
        f"cpu_ms_per_{per}": usage.per_unit_ms(units),
        f"our_cpu_ms_per_{per}": round(usage.ours_ms(units), 3),
        "machine_busy_fraction": round(usage.busy_fraction(), 3),
    }


def order(r: int, arms: Sequence[T]) -> list[T]:
    """ABBA: round r runs the arms in order when r is even, reversed when odd, so a server
    that drifts (fills, warms, slows) during the rounds weighs on every arm alike."""
    return list(arms) if r % 2 == 0 else list(reversed(arms))


def even_rounds(runs: int) -> int:
    """At least two rounds and an even number: ABBA cancels a steady drift only in pairs."""
    return max(2, runs + runs % 2)


def cpu_ratio(baseline: CpuUsage, measured: CpuUsage) -> float:
    """Baseline CPU / measured CPU for the same work: the ratio a quiet machine would show
    if both were bound by CPU alone, whatever other programs took meanwhile."""
    spent = sum(measured.per_tree.values())
    return round(sum(baseline.per_tree.values()) / spent, 4) if spent else float("nan")
