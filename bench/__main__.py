"""`python -m bench`: start a fresh stack, run every benchmark, write the results.

python -m bench                 # full sizes: bench-results.json, docs/benchmarks.md
python -m bench --quick         # small sizes: bench-results-quick.json, docs untouched
python -m bench --quick --profile          # and the batch ingest's profile, printed
python -m bench --only sagas --profile-all profiles/
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
from bench.profile import markdown
from bench.run import BENCHMARKS, run_all
from bench.stack import REPO_ROOT, connect, start_servers, start_service
from store.db import create_pool

log = logging.getLogger("bench")


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for development")
    parser.add_argument("--tiny", action="store_true", help="smallest sizes: does it all run?")
    parser.add_argument("--runs", type=int, help="rounds of each benchmark (pooled)")
    parser.add_argument("--customers", type=int, help="customers in the month close")
    parser.add_argument("--month-close-runs", type=int, help="month closes, each with its floor")
    parser.add_argument("--only", help=f"comma-separated subset of {','.join(BENCHMARKS)}")
    parser.add_argument("--out", type=Path, help="results file (default bench-results.json)")
    parser.add_argument("--doc", type=Path, help="document whose table to rewrite")
    parser.add_argument(
        "--profile",
        nargs="?",
        const=True,
        default=None,
        metavar="DIR",
        help="py-spy on the API during an extra batch ingest run (default in "
        "full runs): its top frames go in the results (and the doc)",
    )
    parser.add_argument(
        "--profile-all",
        type=Path,
        metavar="DIR",
        help="an extra profiled run of every benchmark, raw stacks into DIR",
    )
    parser.add_argument("--no-profile", action="store_true", help="no py-spy at all")
    parser.add_argument("--api-workers", type=int, default=1, help="uvicorn --workers")
    parser.add_argument("--temporal-db-file", action="store_true",
                        help="Temporal dev server on a SQLite file, as `make run` (default: "
                             "in memory, as the tests)")  # fmt: skip
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (logs)")
    return parser.parse_args(argv)


def _profiling(args: argparse.Namespace, mode: str, root: Path) -> tuple[Path | None, set[str]]:
    """Where profiles go, and of which benchmarks: the batch ingest by default in a full
    run or with --profile, every benchmark with --profile-all, none with --no-profile."""
    if args.no_profile:
        return None, set()
    if args.profile_all is not None:
        return args.profile_all, set(BENCHMARKS)
    if args.profile is not None or mode == "full":
        folder = args.profile if isinstance(args.profile, str) else None
        return (Path(folder) if folder else root / "profiles"), {"ingest"}
    return None, set()


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
    if args.month_close_runs:
        sizes = dataclasses.replace(sizes, month_close_runs=args.month_close_runs)
    only = set(args.only.split(",")) if args.only else set(BENCHMARKS)
    if unknown := only - set(BENCHMARKS):
        raise SystemExit(f"unknown benchmark(s) {sorted(unknown)}; choose from {BENCHMARKS}")
    name = "bench-results.json" if mode == "full" else f"bench-results-{mode}.json"
    out = args.out or REPO_ROOT / name
    full = mode == "full" and not args.only
    doc = args.doc or (REPO_ROOT / "docs" / "benchmarks.md" if full else None)
    root = Path(tempfile.mkdtemp(prefix="bench-"))
    profile_dir, profile = _profiling(args, mode, root)
    began = time.monotonic()
    machine = report.machine()
    stack = await start_servers(root, temporal_in_memory=not args.temporal_db_file)
    try:
        await start_service(stack, api_workers=args.api_workers)
        pool = await create_pool(stack.settings.database_url, min_size=8, max_size=8)
        try:
            bench = Bench(stack, await connect(stack), pool, sizes, profile_dir, only, profile)
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
        "options": {
            "api_workers": args.api_workers,
            "temporal_db_file": args.temporal_db_file,
            "profiled": sorted(profile),
        },
        "machine": machine,
        "finished_at": report.now(),
        "results_file": out.name,
        "duration_s": round(time.monotonic() - began, 1),
        "runs": bench.runs,
        "profiles": {name: found.as_json() for name, found in bench.profiles.items()},
        "errors": bench.errors,
    }
    report.write_results(out, results)
    for name, error in bench.errors.items():
        log.error("%s failed: %s", name, error)
    log.info("wrote %s", out)
    batch_profile = bench.profiles.get("ingest_batch-api")
    if doc is not None:
        report.write_table(doc, results)
        if batch_profile is not None:
            report.write_profile(doc, batch_profile, results)
        log.info("wrote the table%s in %s", " and the profile" if batch_profile else "", doc)
    sys.stdout.write(report.table(results) + "\n")
    if batch_profile is not None:
        sys.stdout.write("\nBatch ingest, API process:\n" + markdown(batch_profile) + "\n")
    return 1 if bench.errors else 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="[bench] %(asctime)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    sys.exit(uvloop.run(main(parse())))
