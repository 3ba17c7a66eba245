"""bench-results.json and the results table in docs/benchmarks.md.

The table sits between two markers in the document; everything else in it is prose that a
person keeps, so a run rewrites only the figures.
"""

from __future__ import annotations

import json
import math
import operator
import os
import platform
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BEGIN = "<!-- bench:results:begin (written by `make bench`) -->"
END = "<!-- bench:results:end -->"


@dataclass(frozen=True)
class Goal:
    key: str
    what: str
    text: str
    check: Callable[[float], bool] | None  # None: reported, no goal
    unit: str


def _at_least(limit: float) -> Callable[[float], bool]:
    return lambda v: operator.ge(v, limit)


def _at_most(limit: float) -> Callable[[float], bool]:
    return lambda v: operator.le(v, limit)


GOALS: tuple[Goal, ...] = (
    Goal("ingest_batch_events_per_s", "usage events/s through POST /v1/usage/batch "
         "(1,000-event batches, 8 clients), deduplicated, costed, in Postgres",
         ">= 100,000", _at_least(100_000), "events/s"),
    Goal("ingest_vs_copy_ratio", "the same / raw asyncpg COPY of the same rows, same batches",
         ">= 0.4", _at_least(0.4), ""),
    Goal("ingest_single_req_per_s", "single-event POST /v1/usage with the limiter, "
         "16 connections from a loopback load generator", ">= 3,000", _at_least(3_000), "req/s"),
    Goal("ingest_single_p99_ms", "its p99 latency, client side", "<= 20 ms", _at_most(20), "ms"),
    Goal("limiter_vs_ping_ratio", "median limiter check / bare Redis PING, same connection",
         "<= 1.3", _at_most(1.3), ""),
    Goal("saga_vs_floor_ratio", "billing cycles/s / floor workflows/s (5 no-op activities), "
         "same server and worker settings", ">= 0.7", _at_least(0.7), ""),
    Goal("month_close_10k_s", "billing run of 10,000 customers until every bill is paid",
         "report", None, "s"),
    Goal("month_close_vs_floor_ratio", "the same / 10,000 floor workflows fanned out alike",
         "<= 1.3", _at_most(1.3), ""),
    Goal("worker_peak_rss_mb", "worker's peak RSS during the 10,000-customer run",
         "<= 500", _at_most(500), "MB"),
)  # fmt: skip


# Figures beside the goals: what the noise on a shared machine cannot move much (CPU time
# per unit of work), and the floor that keeps the cycle's shape.
EXTRAS: tuple[tuple[str, str], ...] = (
    ("ingest_vs_copy_cpu_ratio", "COPY's CPU time / the API path's, for the same events"),
    ("saga_vs_shaped_floor_ratio", "billing cycles/s / a floor shaped like the cycle "
     "(1 no-op activity, then a child workflow with 4)"),
    ("saga_vs_floor_cpu_ratio", "the floor's CPU time / the cycles', for the same count"),
    ("saga_vs_shaped_floor_cpu_ratio", "the shaped floor's CPU time / the cycles'"),
    ("month_close_vs_floor_cpu_ratio", "the month close's CPU time / its floor's"),
)  # fmt: skip


def machine() -> dict[str, Any]:
    cpu = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu,
        "memory_gb": round(mem_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def verdicts(figures: dict[str, float]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for goal in GOALS:
        value = figures.get(goal.key)
        met = None if value is None or goal.check is None else bool(goal.check(value))
        out[goal.key] = {"goal": goal.text, "met": met}
    return out


def _fmt(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "not measured"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}" if abs(value) < 10 else f"{value:.1f}"


def table(results: dict[str, Any]) -> str:
    figures: dict[str, float] = results["figures"]
    goals = results["goals"]
    lines = ["| key | what | figure | goal | met |", "|---|---|---|---|---|"]
    for goal in GOALS:
        met = goals[goal.key]["met"]
        mark = "—" if met is None else ("yes" if met else "**no**")
        figure = figures.get(goal.key)
        value = _fmt(figure) + (f" {goal.unit}" if figure is not None and goal.unit else "")
        lines.append(f"| `{goal.key}` | {goal.what} | {value} | {goal.text} | {mark} |")
    lines += ["", "| also measured | what | figure |", "|---|---|---|"]
    lines += [f"| `{key}` | {what} | {_fmt(figures.get(key))} |" for key, what in EXTRAS]
    m, sizes = results["machine"], results["sizes"]
    if results["mode"] != "full":
        lines += ["", f"**{results['mode'].capitalize()} sizes, not the figures of `make bench`.**"]
    lines += [
        "",
        f"Run {results['finished_at']} ({results['mode']}, {results['duration_s']:.0f} s): "
        f"{m['cpus']} × {m['cpu_model']}, {m['memory_gb']} GB, Python {m['python']}; "
        f"load average at start {m['load_average_at_start']}. Median of {sizes['runs']} runs "
        f"({sizes['month_close_runs']} for the month close, {sizes['month_close_customers']:,} "
        f"customers); every run's figures and CPU breakdown are in `{results['results_file']}`.",
    ]
    return "\n".join(lines)


def write_results(path: Path, results: dict[str, Any]) -> None:
    """Written whole or not at all: a run stopped halfway leaves the previous file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(results, indent=2) + "\n")
    tmp.replace(path)


def write_table(doc: Path, results: dict[str, Any]) -> None:
    """Replace the text between the markers (or append them) with this run's table."""
    block = f"{BEGIN}\n{table(results)}\n{END}"
    text = doc.read_text() if doc.exists() else "# Benchmarks\n\n"
    pattern = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END), re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    doc.write_text(text)


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
