"""Billing cycles and the month close, each against its floor on the same server."""

from __future__ import annotations

import contextlib
import statistics
import sys
from datetime import UTC, datetime
from pathlib import Path

from bench import data, sagas
from bench.harness import Bench, RunRecord, cpu_ratio, cpu_record
from bench.stack import FLOOR_TASK_QUEUE, wait_pollers
from billing.catalog import Tier


async def start_floor_worker(b: Bench) -> None:
    if "floor worker" not in b.stack.children:
        b.stack.start_child("floor worker", [sys.executable, "-m", "bench.floor_worker"])
        await wait_pollers(b.client, FLOOR_TASK_QUEUE, b.stack)


async def bench_sagas(b: Bench) -> None:
    n, deadline = b.sizes.saga_cycles, b.sizes.deadline_s
    started = datetime(2021, 1, 1, tzinfo=UTC)
    customers = await data.create_customers(b.pool, "sg", n, tier=Tier.STARTER, started_at=started)
    await start_floor_worker(b)
    records: list[RunRecord] = []
    for r in range(b.sizes.runs):
        period = f"2021-{r + 2:02d}"
        await data.add_period_usage(b.pool, customers, period, Tier.STARTER)
        async with b.profiled("saga", "worker") if r == 0 else contextlib.nullcontext():
            saga_s, cpu = await b.measured(
                sagas.cycles(b.client, b.pool, b.settings, customers, period, deadline)
            )
        async with b.profiled("floor", "floor worker") if r == 0 else contextlib.nullcontext():
            floor_s, floor_cpu = await b.measured(
                sagas.floor_cycles(b.client, n, f"fl{r}", deadline)
            )
        shaped_s, shaped_cpu = await b.measured(
            sagas.floor_cycles(b.client, n, f"fs{r}", deadline, shaped=True)
        )
        records.append({
            "cycles": n, "saga_per_s": round(n / saga_s, 2), "floor_per_s": round(n / floor_s, 2),
            "shaped_floor_per_s": round(n / shaped_s, 2), "ratio": round(floor_s / saga_s, 3),
            "shaped_ratio": round(shaped_s / saga_s, 3), "cpu_ratio": cpu_ratio(floor_cpu, cpu),
            "shaped_cpu_ratio": cpu_ratio(shaped_cpu, cpu), "profiled": b.profile_dir is not None
            and r == 0, **cpu_record(cpu, n, "cycle"), "floor": cpu_record(floor_cpu, n, "cycle"),
            "shaped_floor": cpu_record(shaped_cpu, n, "cycle"),
        })  # fmt: skip
        b.log(f"saga run {r + 1}: {n / saga_s:.1f} cycles/s, floor {n / floor_s:.1f}/s, "
              f"shaped floor {n / shaped_s:.1f}/s")  # fmt: skip
    b.runs["saga"] = records
    counted = [r for r in records if not r["profiled"]] or records
    b.figures["saga_vs_floor_ratio"] = statistics.median(r["ratio"] for r in counted)
    b.figures["saga_vs_shaped_floor_ratio"] = statistics.median(r["shaped_ratio"] for r in counted)
    b.figures["saga_vs_floor_cpu_ratio"] = statistics.median(r["cpu_ratio"] for r in counted)
    b.figures["saga_vs_shaped_floor_cpu_ratio"] = statistics.median(
        r["shaped_cpu_ratio"] for r in counted
    )


def _reset_peak_rss(pid: int) -> None:
    # Writing 5 to clear_refs resets VmHWM (Linux >= 4.0): the peak of this run alone.
    with contextlib.suppress(OSError):
        Path(f"/proc/{pid}/clear_refs").write_text("5")


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def bench_month_close(b: Bench) -> None:
    m, deadline = b.sizes.month_close_customers, b.sizes.month_close_deadline_s
    started = datetime(2020, 1, 1, tzinfo=UTC)
    customers = await data.create_customers(b.pool, "mc", m, tier=Tier.STARTER, started_at=started)
    await start_floor_worker(b)
    records: list[RunRecord] = []
    for r in range(b.sizes.month_close_runs):
        period = f"2020-{r + 2:02d}"
        await data.add_period_usage(b.pool, customers, period, Tier.STARTER)
        _reset_peak_rss(b.stack.pid("worker"))
        close_s, cpu = await b.measured(
            sagas.month_close(b.client, b.pool, b.settings, m, period, deadline)
        )
        rss = peak_rss_mb(b.stack.pid("worker"))
        _reset_peak_rss(b.stack.pid("floor worker"))
        floor_s, floor_cpu = await b.measured(
            sagas.floor_month_close(b.client, b.settings, m, f"mf{r}", deadline)
        )
        records.append({
            "customers": m, "seconds": round(close_s, 1), "floor_seconds": round(floor_s, 1),
            "ratio": round(close_s / floor_s, 3), "cpu_ratio": cpu_ratio(cpu, floor_cpu),
            "worker_peak_rss_mb": round(rss, 1),
            "floor_worker_peak_rss_mb": round(peak_rss_mb(b.stack.pid("floor worker")), 1),
            **cpu_record(cpu, m, "customer"), "floor": cpu_record(floor_cpu, m, "customer"),
        })  # fmt: skip
        b.log(f"month close run {r + 1}: {close_s:.1f} s, floor {floor_s:.1f} s, "
              f"worker peak {rss:.0f} MB")  # fmt: skip
    b.runs["month_close"] = records
    b.figures["month_close_10k_s"] = statistics.median(r["seconds"] for r in records)
    b.figures["month_close_vs_floor_ratio"] = statistics.median(r["ratio"] for r in records)
    b.figures["month_close_vs_floor_cpu_ratio"] = statistics.median(r["cpu_ratio"] for r in records)
    b.figures["worker_peak_rss_mb"] = max(r["worker_peak_rss_mb"] for r in records)
