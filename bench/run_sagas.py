"""Billing cycles and the month close, each against its floor, interleaved.

The saga rounds run product and floors ABBA (saga, floor, shaped floor; then the reverse)
over an even number of rounds on one server, so a server that fills and slows from round
to round weighs on each alike. Each half of a month close starts on an empty Temporal
server (`fresh_temporal`, every Temporal client restarted with it), the product first in
even runs and the floor first in odd ones. Ratios are pooled: total time over total time.
"""

from __future__ import annotations

import contextlib
import sys
from datetime import UTC, datetime
from pathlib import Path

from bench import data, sagas
from bench.cpu import CpuUsage, combined
from bench.floor_io import FloorShape
from bench.harness import Bench, RunRecord, cpu_ratio, cpu_record, even_rounds, order
from bench.stack import FLOOR_TASK_QUEUE, fresh_temporal, wait_pollers
from billing.catalog import Tier
from billing.workflow_ids import billing_cycle_id

SAGA, FLOOR, SHAPED = "saga", "floor", "shaped floor"


def period(year: int, index: int) -> str:
    """The month `index` months after January of `year`."""
    return f"{year + index // 12}-{index % 12 + 1:02d}"


async def start_floor_worker(b: Bench) -> None:
    if "floor worker" not in b.stack.children:
        b.stack.start_child("floor worker", [sys.executable, "-m", "bench.floor_worker"])
        await wait_pollers(b.client, FLOOR_TASK_QUEUE, b.stack)


async def product_shape(b: Bench, customer: str, month: str) -> FloorShape:
    """Bill one customer for `month` (unmeasured) and count what its cycle scheduled: the
    floor mirrors the product as it is, whatever a later change merges or splits."""
    if b.shape is None:
        await data.add_period_usage(b.pool, [customer], month, Tier.STARTER)
        await sagas.cycles(b.client, b.pool, b.settings, [customer], month, 120.0)
        b.shape = await sagas.shape_of(b.client, billing_cycle_id(customer, month))
        b.runs["saga_shape"] = [b.shape.model_dump()]
        b.log(f"a paid billing cycle: {b.shape.executions} executions, {b.shape.model_dump()}")
    return b.shape


async def bench_sagas(b: Bench) -> None:
    n, deadline = b.sizes.saga_cycles, b.sizes.deadline_s
    started = datetime(2021, 1, 1, tzinfo=UTC)
    customers = await data.create_customers(b.pool, "sg", n, tier=Tier.STARTER, started_at=started)
    await start_floor_worker(b)
    shape = await product_shape(b, customers[0], period(2021, 0))
    if b.profiling("sagas"):  # one unmeasured round under py-spy
        month = period(2021, 1)
        await data.add_period_usage(b.pool, customers, month, Tier.STARTER)
        async with b.profiled("saga", "worker"):
            await sagas.cycles(b.client, b.pool, b.settings, customers, month, deadline)
        async with b.profiled("floor", "floor worker"):
            await sagas.floor_cycles(b.client, shape, n, "flp", deadline)
    seconds: dict[str, list[float]] = {SAGA: [], FLOOR: [], SHAPED: []}
    cpu: dict[str, list[CpuUsage]] = {SAGA: [], FLOOR: [], SHAPED: []}
    records: list[RunRecord] = []
    for r in range(even_rounds(b.sizes.runs)):
        month = period(2021, r + 2)
        await data.add_period_usage(b.pool, customers, month, Tier.STARTER)
        arms = order(r, (SAGA, FLOOR, SHAPED))
        for arm in arms:
            if arm == SAGA:
                work = sagas.cycles(b.client, b.pool, b.settings, customers, month, deadline)
            else:
                tag = f"{'fl' if arm == FLOOR else 'fs'}{r}"
                work = sagas.floor_cycles(b.client, shape, n, tag, deadline, shaped=arm == SHAPED)
            took, used = await b.measured(work)
            seconds[arm].append(took)
            cpu[arm].append(used)
        saga_s, floor_s, shaped_s = (seconds[a][-1] for a in (SAGA, FLOOR, SHAPED))
        records.append({
            "order": arms, "cycles": n, "saga_per_s": round(n / saga_s, 2),
            "floor_per_s": round(n / floor_s, 2), "shaped_floor_per_s": round(n / shaped_s, 2),
            "ratio": round(floor_s / saga_s, 3), "shaped_ratio": round(shaped_s / saga_s, 3),
            "cpu_ratio": cpu_ratio(cpu[FLOOR][-1], cpu[SAGA][-1]),
            "shaped_cpu_ratio": cpu_ratio(cpu[SHAPED][-1], cpu[SAGA][-1]),
            **cpu_record(cpu[SAGA][-1], n, "cycle"),
            "floor": cpu_record(cpu[FLOOR][-1], n, "cycle"),
            "shaped_floor": cpu_record(cpu[SHAPED][-1], n, "cycle"),
        })  # fmt: skip
        b.log(f"saga round {r + 1} ({', '.join(arms)}): {n / saga_s:.1f} cycles/s, "
              f"floor {n / floor_s:.1f}/s, shaped floor {n / shaped_s:.1f}/s")  # fmt: skip
    b.runs["saga"] = records
    total = {arm: sum(s) for arm, s in seconds.items()}
    b.figures["saga_vs_floor_ratio"] = round(total[FLOOR] / total[SAGA], 4)
    b.figures["saga_vs_shaped_floor_ratio"] = round(total[SHAPED] / total[SAGA], 4)
    spent = {arm: combined(c) for arm, c in cpu.items()}
    b.figures["saga_vs_floor_cpu_ratio"] = cpu_ratio(spent[FLOOR], spent[SAGA])
    b.figures["saga_vs_shaped_floor_cpu_ratio"] = cpu_ratio(spent[SHAPED], spent[SAGA])


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
    shape = await product_shape(b, customers[0], period(2020, 0))
    seconds: dict[str, list[float]] = {SAGA: [], FLOOR: []}
    cpu: dict[str, list[CpuUsage]] = {SAGA: [], FLOOR: []}
    records: list[RunRecord] = []
    for r in range(b.sizes.month_close_runs):
        month = period(2020, r + 1)
        await data.add_period_usage(b.pool, customers, month, Tier.STARTER)
        arms = order(r, (SAGA, FLOOR))
        peak: dict[str, float] = {}
        for arm in arms:
            b.client = await fresh_temporal(b.stack)
            process = "worker" if arm == SAGA else "floor worker"
            _reset_peak_rss(b.stack.pid(process))
            if arm == SAGA:
                work = sagas.month_close(b.client, b.pool, b.settings, m, month, deadline)
            else:
                work = sagas.floor_month_close(b.client, b.settings, shape, m, f"mf{r}", deadline)
            took, used = await b.measured(work)
            seconds[arm].append(took)
            cpu[arm].append(used)
            peak[arm] = peak_rss_mb(b.stack.pid(process))
        close_s, floor_s = seconds[SAGA][-1], seconds[FLOOR][-1]
        records.append({
            "order": ["month close" if a == SAGA else a for a in arms], "customers": m,
            "seconds": round(close_s, 1), "floor_seconds": round(floor_s, 1),
            "ratio": round(close_s / floor_s, 3),
            "cpu_ratio": cpu_ratio(cpu[SAGA][-1], cpu[FLOOR][-1]),
            "worker_peak_rss_mb": round(peak[SAGA], 1),
            "floor_worker_peak_rss_mb": round(peak[FLOOR], 1),
            **cpu_record(cpu[SAGA][-1], m, "customer"),
            "floor": cpu_record(cpu[FLOOR][-1], m, "customer"),
        })  # fmt: skip
        b.log(f"month close run {r + 1}: {close_s:.1f} s, floor {floor_s:.1f} s, "
              f"worker peak {peak[SAGA]:.0f} MB")  # fmt: skip
    b.runs["month_close"] = records
    b.figures["month_close_10k_s"] = round(sum(seconds[SAGA]) / len(seconds[SAGA]), 1)
    b.figures["month_close_vs_floor_ratio"] = round(sum(seconds[SAGA]) / sum(seconds[FLOOR]), 4)
    b.figures["month_close_vs_floor_cpu_ratio"] = cpu_ratio(
        combined(cpu[SAGA]), combined(cpu[FLOOR])
    )
    b.figures["worker_peak_rss_mb"] = max(r["worker_peak_rss_mb"] for r in records)
