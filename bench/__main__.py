"""`python -m bench`: start a fresh stack, run every benchmark, write the results.

python -m bench                 # full sizes: bench-results.json, docs/benchmarks.md
python -m bench --quick         # small sizes: bench-results-quick.json, docs untouched
python -m bench --only sagas --profile profiles/
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import logging
import shutil
import sys
import tempfile
import time
from pathlib import Path

import uvloop

from bench import report
from bench.harness import FULL, QUICK, TINY, Bench
from bench.run import BENCHMARKS, run_all
from bench.stack import REPO_ROOT, connect, start_servers, start_service
from store.db import create_pool

log = logging.getLogger("bench")


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for development")
    parser.add_argument("--tiny", action="store_true", help="smallest sizes: does it all run?")
    parser.add_argument("--runs", type=int, help="repetitions of each benchmark (median)")
    parser.add_argument("--customers", type=int, help="customers in the month close")
    parser.add_argument("--only", help=f"comma-separated subset of {','.join(BENCHMARKS)}")
    parser.add_argument("--out", type=Path, help="results file (default bench-results.json)")
    parser.add_argument("--doc", type=Path, help="document whose table to rewrite")
    parser.add_argument("--profile", type=Path, help="py-spy profiles into this folder")
    parser.add_argument("--api-workers", type=int, default=1, help="uvicorn --workers")
    parser.add_argument("--temporal-db-file", action="store_true",
                        help="Temporal dev server on a SQLite file, as `make run` (default: "
                             "in memory, as the tests)")  # fmt: skip
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (logs)")
    return parser.parse_args(argv)


def _check_load_generator() -> None:
    if importlib.util.find_spec("aiohttp") is None:
        raise SystemExit(
            "bench: the load generator needs aiohttp (the dev extra): "
            "pip install -e '.[stack,dev]', or `make install`"
        )


async def main(args: argparse.Namespace) -> int:
    _check_load_generator()
    mode = "tiny" if args.tiny else "quick" if args.quick else "full"
    sizes = {"full": FULL, "quick": QUICK, "tiny": TINY}[mode]
    if args.runs:
        sizes = dataclasses.replace(sizes, runs=args.runs)
    if args.customers:
        sizes = dataclasses.replace(sizes, month_close_customers=args.customers)
    only = set(args.only.split(",")) if args.only else set(BENCHMARKS)
    if unknown := only - set(BENCHMARKS):
        raise SystemExit(f"unknown benchmark(s) {sorted(unknown)}; choose from {BENCHMARKS}")
    name = "bench-results.json" if mode == "full" else f"bench-results-{mode}.json"
    out = args.out or REPO_ROOT / name
    full = mode == "full" and not args.only
    doc = args.doc or (REPO_ROOT / "docs" / "benchmarks.md" if full else None)
    root = Path(tempfile.mkdtemp(prefix="bench-"))
    began = time.monotonic()
    machine = report.machine()
    stack = await start_servers(root, temporal_in_memory=not args.temporal_db_file)
    try:
        await start_service(stack, api_workers=args.api_workers)
        pool = await create_pool(stack.settings.database_url, min_size=8, max_size=8)
        try:
            bench = Bench(stack, await connect(stack), pool, sizes, args.profile, only)
            await run_all(bench)
        finally:
            await pool.close()
    finally:
        stack.stop()
        if args.keep:
            log.info("logs kept in %s", root)
        else:
            shutil.rmtree(root, ignore_errors=True)
    figures = {goal.key: None for goal in report.GOALS} | bench.figures
    results = {
        **{k: None if v is None else round(v, 4) for k, v in figures.items()},
        "figures": figures,
        "goals": report.verdicts(bench.figures),
        "mode": mode,
        "sizes": dataclasses.asdict(sizes),
        "options": {"api_workers": args.api_workers, "temporal_db_file": args.temporal_db_file},
        "machine": machine,
        "finished_at": report.now(),
        "results_file": out.name,
        "duration_s": round(time.monotonic() - began, 1),
        "runs": bench.runs,
        "errors": bench.errors,
    }
    report.write_results(out, results)
    for name, error in bench.errors.items():
        log.error("%s failed: %s", name, error)
    log.info("wrote %s", out)
    if doc is not None:
        report.write_table(doc, results)
        log.info("wrote the table in %s", doc)
    sys.stdout.write(report.table(results) + "\n")
    return 1 if bench.errors else 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="[bench] %(asctime)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    sys.exit(uvloop.run(main(parse())))
