"""How many running cycles should a billing run allow? `python -m bench.sweep`.

For each value of BILLING_RUN_CONCURRENCY, one `python -m bench --only month_close`
on a fresh stack (the worker and the floor both read the setting from the environment),
then a table: seconds for the month close and its floor, their ratio, CPU per customer,
and the worker's peak RSS. The worker's cache (`max_cached_workflows`) must hold every
running cycle plus the run; config/settings.py takes both defaults from what this prints
(docs/benchmarks.md, "Billing run concurrency").

    python -m bench.sweep --values 10,20,50,200 --customers 2000
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.stack import REPO_ROOT


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    summary = (__doc__ or "").split("\n")[0]
    parser = argparse.ArgumentParser(prog="python -m bench.sweep", description=summary)
    parser.add_argument("--values", default="10,20,50,200", help="comma-separated concurrencies")
    parser.add_argument("--customers", type=int, default=2000, help="customers per month close")
    parser.add_argument("--runs", type=int, default=1, help="month closes per value")
    parser.add_argument("--keep", type=Path, help="folder for each value's results file")
    return parser.parse_args(argv)


def one(value: int, customers: int, runs: int, out: Path) -> dict[str, object]:
    argv = [sys.executable, "-m", "bench", "--only", "month_close", "--no-profile"]
    argv += ["--customers", str(customers), "--month-close-runs", str(runs), "--out", str(out)]
    env = {**os.environ, "BILLING_RUN_CONCURRENCY": str(value)}
    subprocess.run(argv, cwd=REPO_ROOT, env=env, check=True)
    found: dict[str, object] = json.loads(out.read_text())
    return found


def row(value: int, results: dict[str, object]) -> str:
    runs = results["runs"]
    assert isinstance(runs, dict)
    records = runs["month_close"]
    close = sum(r["seconds"] for r in records) / len(records)
    floor = sum(r["floor_seconds"] for r in records) / len(records)
    cpu = sum(r["our_cpu_ms_per_customer"] for r in records) / len(records)
    rss = max(r["worker_peak_rss_mb"] for r in records)
    return (
        f"| {value} | {close:.1f} | {floor:.1f} | {results['month_close_vs_floor_ratio']} | "
        f"{results['month_close_vs_floor_cpu_ratio']} | {cpu:.1f} | {rss:.0f} |"
    )


def main() -> None:
    args = parse()
    values = [int(v) for v in args.values.split(",")]
    lines = [
        "| concurrency | month close s | floor s | ratio | CPU ratio | CPU ms/customer | "
        "worker peak RSS MB |",
        "|---|---|---|---|---|---|---|",
    ]
    folder = args.keep or Path(tempfile.mkdtemp(prefix="sweep-"))
    folder.mkdir(parents=True, exist_ok=True)
    for value in values:
        results = one(value, args.customers, args.runs, folder / f"concurrency-{value}.json")
        lines.append(row(value, results))
        sys.stdout.write("\n".join(lines) + "\n")
        sys.stdout.flush()
    sys.stdout.write(f"results files in {folder}\n")


if __name__ == "__main__":
    main()
