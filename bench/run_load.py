"""Ingestion and the limiter: HTTP load against the API, Redis round trips in-process."""

from __future__ import annotations

import statistics

from bench import ingest
from bench.harness import Bench, RunRecord, cpu_ratio, cpu_record
from bench.limiter import limiter_vs_ping
from bench.loadgen import percentile


async def bench_limiter(b: Bench) -> None:
    records: list[RunRecord] = []
    for r in range(b.sizes.runs):
        result = await limiter_vs_ping(b.settings.redis_url, b.sizes.limiter_samples)
        records.append({"ping_us": round(result.ping_us, 1), "check_us": round(result.check_us, 1),
                        "ratio": round(result.ratio, 3), "samples": result.samples})  # fmt: skip
        b.log(f"limiter run {r + 1}: {records[-1]}")
    b.runs["limiter"] = records
    b.figures["limiter_vs_ping_ratio"] = statistics.median(r["ratio"] for r in records)


async def bench_ingest(b: Bench, customers: list[str]) -> None:
    warm = ingest.batch_events("warm", customers, 4)
    await ingest.ingest_batches(b.stack.api_url, b.auth, warm)
    if b.profile_dir is not None:
        events = ingest.batch_events("profile", customers, b.sizes.batches)
        async with b.profiled("ingest_batch", "api"):
            await ingest.ingest_batches(b.stack.api_url, b.auth, events)
    records: list[RunRecord] = []
    for r in range(b.sizes.runs):
        events = ingest.batch_events(f"b{r}", customers, b.sizes.batches)
        await ingest.empty_usage(b.pool)
        api, api_cpu = await b.measured(ingest.ingest_batches(b.stack.api_url, b.auth, events))
        stored = await ingest.stored_events(b.pool)
        if api.errors or stored != events.count:
            raise RuntimeError(f"batch ingest: {api.errors} errors ({api.first_error}), "
                               f"{stored} of {events.count} events stored")  # fmt: skip
        await ingest.empty_usage(b.pool)
        copy_s, copy_cpu = await b.measured(ingest.copy_batches(b.pool, events))
        if await ingest.stored_events(b.pool) != events.count:
            raise RuntimeError("the COPY baseline did not store every row")
        api_rate, copy_rate = events.count / api.elapsed_s, events.count / copy_s
        records.append({
            "events": events.count, "api_events_per_s": round(api_rate),
            "copy_events_per_s": round(copy_rate), "ratio": round(api_rate / copy_rate, 4),
            "cpu_ratio": cpu_ratio(copy_cpu, api_cpu),
            "batch_p50_ms": round(percentile(api.latencies, 50) * 1000, 1),
            "batch_p99_ms": round(percentile(api.latencies, 99) * 1000, 1),
            **cpu_record(api_cpu, events.count // 1000, "1000_events"),
            "copy": cpu_record(copy_cpu, events.count // 1000, "1000_events"),
        })  # fmt: skip
        b.log(f"ingest run {r + 1}: {api_rate:,.0f} events/s; COPY {copy_rate:,.0f}/s")
    b.runs["ingest_batch"] = records
    rates = [r["api_events_per_s"] for r in records]
    b.figures["ingest_batch_events_per_s"] = statistics.median(rates)
    b.figures["ingest_vs_copy_ratio"] = statistics.median(r["ratio"] for r in records)
    b.figures["ingest_vs_copy_cpu_ratio"] = statistics.median(r["cpu_ratio"] for r in records)


async def bench_single(b: Bench, customers: list[str]) -> None:
    conc, count = b.sizes.single_concurrency, b.sizes.single_requests
    warm = ingest.single_events("warm", customers, 200)
    await ingest.ingest_single(b.stack.api_url, b.auth, warm, conc)
    if b.profile_dir is not None:
        bodies = ingest.single_events("profile", customers, count)
        async with b.profiled("ingest_single", "api"):
            await ingest.ingest_single(b.stack.api_url, b.auth, bodies, conc)
    records: list[RunRecord] = []
    for r in range(b.sizes.runs):
        bodies = ingest.single_events(f"s{r}", customers, count)
        res, cpu = await b.measured(ingest.ingest_single(b.stack.api_url, b.auth, bodies, conc))
        if res.errors:
            raise RuntimeError(f"single ingest: {res.errors} errors, first: {res.first_error}")
        records.append({
            "requests": res.ok, "concurrency": conc, "req_per_s": round(res.per_s, 1),
            "p50_ms": round(percentile(res.latencies, 50) * 1000, 2),
            "p99_ms": round(percentile(res.latencies, 99) * 1000, 2),
            "max_ms": round(max(res.latencies) * 1000, 2),
            **cpu_record(cpu, res.ok, "request"),
        })  # fmt: skip
        b.log(f"single run {r + 1}: {res.per_s:,.0f} req/s, p99 {records[-1]['p99_ms']} ms")
    b.runs["ingest_single"] = records
    b.figures["ingest_single_req_per_s"] = statistics.median(r["req_per_s"] for r in records)
    b.figures["ingest_single_p99_ms"] = statistics.median(r["p99_ms"] for r in records)
