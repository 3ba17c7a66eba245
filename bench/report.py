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

from bench.harness import even_rounds
from bench.profile import Profile, markdown

BEGIN = "<!-- bench:results:begin (written by `make bench`) -->"
END = "<!-- bench:results:end -->"
PROFILE_BEGIN = "<!-- bench:profile:begin (written by `make bench`) -->"
PROFILE_END = "<!-- bench:profile:end -->"


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
         "(1,000-event batches, 8 clients, closed loop), deduplicated, costed, in Postgres",
         ">= 100,000", _at_least(100_000), "events/s"),
    Goal("ingest_vs_copy_ratio", "the same / raw asyncpg COPY of the same rows, same batches, "
         "interleaved", ">= 0.5", _at_least(0.5), ""),
    Goal("ingest_single_req_per_s", "single-event POST /v1/usage with the customer's own key, "
         "16 connections, closed loop at saturation", ">= 3,000", _at_least(3_000), "req/s"),
    Goal("ingest_single_p99_ms", "its p99 latency, pooled over every request of every round",
         "<= 20 ms", _at_most(20), "ms"),
    Goal("ingest_open_loop_p99_ms", "p99 latency of single events (customer key) due at a "
         "fixed 1,500 req/s, from each request's due time, pooled", "<= 10 ms", _at_most(10),
         "ms"),
    Goal("limiter_vs_ping_ratio", "median limiter check / bare Redis PING sent the same way "
         "(prepared bytes on a held connection), sample by sample, pooled", "<= 1.15",
         _at_most(1.15), ""),
    Goal("saga_vs_floor_ratio", "billing cycles/s / floor cycles/s (the cycle's activities as "
         "no-ops in one workflow), interleaved ABBA on one server", ">= 0.8", _at_least(0.8), ""),
    Goal("month_close_10k_s", "billing run of 10,000 customers until visibility counts every "
         "cycle completed (mean of the runs)", "report", None, "s"),
    Goal("month_close_vs_floor_ratio", "the same / 10,000 floor cycles fanned out alike; each "
         "half on a fresh Temporal server, order alternated", "<= 1.2", _at_most(1.2), ""),
    Goal("worker_peak_rss_mb", "worker's peak RSS during the 10,000-customer runs",
         "<= 300", _at_most(300), "MB"),
)  # fmt: skip


# Figures beside the goals: what the noise on a shared machine cannot move much (CPU time
# per unit of work), the other arms of each comparison, and more of each distribution.
EXTRAS: tuple[tuple[str, str], ...] = (
    ("ingest_vs_copy_cpu_ratio", "COPY's CPU time / the API path's, for the same events"),
    ("ingest_batch_p99_ms", "p99 of one 1,000-event batch request, pooled (ms)"),
    ("ingest_single_p50_ms", "single events, customer key, closed loop: p50, pooled (ms)"),
    ("ingest_single_service_key_req_per_s", "single events with the service key, interleaved "
     "with the customer-key rounds (req/s)"),
    ("ingest_single_service_key_p99_ms", "its p99, pooled (ms)"),
    ("ingest_open_loop_p50_ms", "open loop at 1,500 req/s: p50 (ms)"),
    ("ingest_open_loop_p999_ms", "open loop at 1,500 req/s: p99.9 (ms)"),
    ("limiter_vs_client_ping_ratio", "limiter check / redis-py's own `ping()` on a dedicated "
     "connection (what the lane saves over the client's command path)"),
    ("saga_vs_shaped_floor_ratio", "billing cycles/s / a floor shaped like the cycle (the same "
     "executions, parent and children, with no-op activities)"),
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


def _count(n: int, what: str) -> str:
    return f"{n} {what}" if n == 1 else f"{n} {what}{'es' if what.endswith('s') else 's'}"


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
        f"load average at start {m['load_average_at_start']}. Pooled over "
        f"{_count(sizes['runs'], 'round')} (the sagas {even_rounds(sizes['runs'])}, ABBA; "
        f"{_count(sizes['month_close_runs'], 'month close')} of "
        f"{sizes['month_close_customers']:,} customers, each with its floor); every round's "
        f"figures and CPU breakdown are in `{results['results_file']}`.",
    ]
    return "\n".join(lines)


def write_results(path: Path, results: dict[str, Any]) -> None:
    """Written whole or not at all: a run stopped halfway leaves the previous file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(results, indent=2) + "\n")
    tmp.replace(path)


def _replace(doc: Path, begin: str, end: str, body: str) -> None:
    """Replace the text between the markers (or append them) with `body`."""
    block = f"{begin}\n{body}\n{end}"
    text = doc.read_text() if doc.exists() else "# Benchmarks\n\n"
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    doc.write_text(text)


def write_table(doc: Path, results: dict[str, Any]) -> None:
    _replace(doc, BEGIN, END, table(results))


def write_profile(doc: Path, profile: Profile, results: dict[str, Any]) -> None:
    """The batch ingest's top frames, from the extra profiled run of this `make bench`."""
    batches, when = results["sizes"]["batches"], results["finished_at"]
    head = (
        f"Batch ingest, {batches} batches of 1,000 events, {when}: an extra run under py-spy, "
        "not one of the measured rounds."
    )
    _replace(doc, PROFILE_BEGIN, PROFILE_END, head + "\n\n" + markdown(profile))


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
