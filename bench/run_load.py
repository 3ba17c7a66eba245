"""Ingestion and the limiter: HTTP load against the API, Redis round trips in-process.

Every comparison is interleaved (ABBA: round r runs its arms in order when r is even,
reversed when odd), and every figure is pooled over all rounds: rates and ratios from the
total work over the total time, percentiles over every request's latency from every
round, never a median of per-round percentiles.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from bench import ingest
from bench.cpu import CpuUsage, combined
from bench.harness import Bench, RunRecord, cpu_ratio, cpu_record, order
from bench.limiter import LimiterResult, limiter_vs_ping, pooled
from bench.loadgen import LoadResult, Request, percentile
from bench.loadgen import pooled as pooled_latencies

CUSTOMER_KEY, SERVICE_KEY = "customer key", "service key"


def _ms(values: Sequence[float], q: float) -> float:
    return round(percentile(values, q) * 1000, 2)


def _rate(results: Sequence[LoadResult]) -> float:
    """Answered requests over the time they took, all rounds together."""
    return round(sum(r.ok for r in results) / sum(r.elapsed_s for r in results), 1)


async def bench_limiter(b: Bench) -> None:
    found: list[LimiterResult] = []
    records: list[RunRecord] = []
    for r in range(b.sizes.runs):
        result = await limiter_vs_ping(b.settings.redis_url, b.sizes.limiter_samples)
        found.append(result)
        records.append({
            "ping_us": round(result.ping_us, 1), "check_us": round(result.check_us, 1),
            "ratio": round(result.ratio, 3),
            "client_ping_us": round(result.client_ping_us, 1),
            "client_ratio": round(result.client_ratio, 3), "samples": len(result.pings),
        })  # fmt: skip
        b.log(f"limiter run {r + 1}: {records[-1]}")
    b.runs["limiter"] = records
    b.figures["limiter_vs_ping_ratio"] = round(pooled(found).ratio, 4)
    b.figures["limiter_vs_client_ping_ratio"] = round(pooled(found).client_ratio, 4)


async def bench_ingest(b: Bench, customers: list[str]) -> None:
    url = b.stack.api_url
    await ingest.ingest_batches(url, b.auth, ingest.batch_events("warm", customers, 4))
    if b.profiling("ingest"):
        events = ingest.batch_events("profile", customers, b.sizes.batches)
        async with b.profiled("ingest_batch", "api"):
            await ingest.ingest_batches(url, b.auth, events)
    records: list[RunRecord] = []
    results: list[LoadResult] = []
    api_cpu: list[CpuUsage] = []
    copy_cpu: list[CpuUsage] = []
    copy_s: list[float] = []
    for r in range(b.sizes.runs):
        events = ingest.batch_events(f"b{r}", customers, b.sizes.batches)
        arms = order(r, ("api", "copy"))
        for arm in arms:
            await ingest.empty_usage(b.pool)
            if arm == "api":
                api, cpu = await b.measured(ingest.ingest_batches(url, b.auth, events))
                if api.errors:
                    raise RuntimeError(f"batch ingest: {api.errors} errors ({api.first_error})")
                results.append(api)
                api_cpu.append(cpu)
            else:
                seconds, cpu = await b.measured(ingest.copy_batches(b.pool, events))
                copy_s.append(seconds)
                copy_cpu.append(cpu)
            if (stored := await ingest.stored_events(b.pool)) != events.count:
                raise RuntimeError(f"batch ingest ({arm}): {stored} of {events.count} stored")
        api_rate, copy_rate = events.count / api.elapsed_s, events.count / copy_s[-1]
        units = events.count // 1000
        records.append({
            "order": arms, "events": events.count, "api_events_per_s": round(api_rate),
            "copy_events_per_s": round(copy_rate), "ratio": round(api_rate / copy_rate, 4),
            "cpu_ratio": cpu_ratio(copy_cpu[-1], api_cpu[-1]),
            "batch_p50_ms": _ms(api.latencies, 50), "batch_p99_ms": _ms(api.latencies, 99),
            **cpu_record(api_cpu[-1], units, "1000_events"),
            "copy": cpu_record(copy_cpu[-1], units, "1000_events"),
        })  # fmt: skip
        b.log(f"ingest run {r + 1} ({' then '.join(arms)}): {api_rate:,.0f} events/s; "
              f"COPY {copy_rate:,.0f}/s")  # fmt: skip
    b.runs["ingest_batch"] = records
    api_s = sum(r.elapsed_s for r in results)
    b.figures["ingest_batch_events_per_s"] = round(sum(r["events"] for r in records) / api_s)
    b.figures["ingest_vs_copy_ratio"] = round(sum(copy_s) / api_s, 4)
    b.figures["ingest_vs_copy_cpu_ratio"] = cpu_ratio(combined(copy_cpu), combined(api_cpu))
    b.figures["ingest_batch_p99_ms"] = _ms(pooled_latencies(results), 99)


def _auth(b: Bench, keys: Mapping[str, str], arm: str) -> dict[str, Mapping[str, str]]:
    """Each customer's headers: its own key, or the service key for every one."""
    if arm == SERVICE_KEY:
        return dict.fromkeys(keys, b.auth)
    return {cid: {"Authorization": f"Bearer {key}"} for cid, key in keys.items()}


async def bench_single(b: Bench, keys: Mapping[str, str]) -> None:
    """Closed loop at saturation: the customer's own key (the product figure) and the
    service key, interleaved."""
    conc, count, url, customers = b.sizes.single_concurrency, b.sizes.single_requests, \
        b.stack.api_url, list(keys)  # fmt: skip
    for arm in (CUSTOMER_KEY, SERVICE_KEY):
        warm = ingest.single_events(f"warm-{arm[0]}", customers, 200, _auth(b, keys, arm))
        await ingest.ingest_single(url, warm, conc)
    if b.profiling("single"):
        bodies = ingest.single_events("profile", customers, count, _auth(b, keys, CUSTOMER_KEY))
        async with b.profiled("ingest_single", "api"):
            await ingest.ingest_single(url, bodies, conc)
    records: list[RunRecord] = []
    results: dict[str, list[LoadResult]] = {CUSTOMER_KEY: [], SERVICE_KEY: []}
    for r in range(b.sizes.runs):
        for arm in order(r, (CUSTOMER_KEY, SERVICE_KEY)):
            requests = ingest.single_events(f"s{r}{arm[0]}", customers, count,
                                            _auth(b, keys, arm))  # fmt: skip
            res, cpu = await b.measured(ingest.ingest_single(url, requests, conc))
            if res.errors:
                raise RuntimeError(f"single ingest ({arm}): {res.errors} errors, "
                                   f"first: {res.first_error}")  # fmt: skip
            results[arm].append(res)
            records.append({
                "key": arm, "requests": res.ok, "concurrency": conc,
                "req_per_s": round(res.per_s, 1), "p50_ms": _ms(res.latencies, 50),
                "p99_ms": _ms(res.latencies, 99), "max_ms": round(max(res.latencies) * 1000, 2),
                **cpu_record(cpu, res.ok, "request"),
            })  # fmt: skip
            b.log(f"single run {r + 1}, {arm}: {res.per_s:,.0f} req/s, "
                  f"p99 {records[-1]['p99_ms']} ms")  # fmt: skip
    b.runs["ingest_single"] = records
    mine, service = results[CUSTOMER_KEY], results[SERVICE_KEY]
    b.figures["ingest_single_req_per_s"] = _rate(mine)
    b.figures["ingest_single_p99_ms"] = _ms(pooled_latencies(mine), 99)
    b.figures["ingest_single_p50_ms"] = _ms(pooled_latencies(mine), 50)
    b.figures["ingest_single_service_key_req_per_s"] = _rate(service)
    b.figures["ingest_single_service_key_p99_ms"] = _ms(pooled_latencies(service), 99)


async def bench_open_loop(b: Bench, keys: Mapping[str, str]) -> None:
    """Single events with the customer's key, due at a fixed rate: the latency a customer
    sees at that load, queueing included."""
    rate, conns, url = b.sizes.open_loop_rate, b.sizes.open_loop_connections, b.stack.api_url
    auth, customers = _auth(b, keys, CUSTOMER_KEY), list(keys)
    count = round(rate * b.sizes.open_loop_s)

    def requests(tag: str, n: int) -> list[Request]:
        return ingest.single_events(tag, customers, n, auth)

    await ingest.ingest_open_loop(url, requests("warm-o", round(rate)), rate, conns)
    records: list[RunRecord] = []
    results: list[LoadResult] = []
    for r in range(b.sizes.runs):
        res, cpu = await b.measured(
            ingest.ingest_open_loop(url, requests(f"o{r}", count), rate, conns)
        )
        if res.errors > len(res.unanswered):  # an answer, but not 200: a wrong one
            raise RuntimeError(f"open loop: {res.errors} errors, first: {res.first_error}")
        results.append(res)
        every = pooled_latencies([res])
        records.append({
            "requests": count, "answered": res.ok, "unanswered": len(res.unanswered),
            "first_error": res.first_error, "due_per_s": rate,
            "answered_per_s": round(res.per_s, 1), "connections": conns,
            "p50_ms": _ms(every, 50), "p99_ms": _ms(every, 99), "p999_ms": _ms(every, 99.9),
            "max_ms": round(max(every) * 1000, 2),
            "max_send_lag_ms": round(res.max_send_lag_s * 1000, 2),
            **cpu_record(cpu, count, "request"),
        })  # fmt: skip
        b.log(f"open loop run {r + 1}: {rate:,.0f} req/s due, {res.per_s:,.0f} answered, "
              f"{len(res.unanswered)} unanswered, p99 {records[-1]['p99_ms']} ms, client lag "
              f"≤ {records[-1]['max_send_lag_ms']} ms")  # fmt: skip
    b.runs["ingest_open_loop"] = records
    every = pooled_latencies(results)
    b.figures["ingest_open_loop_p99_ms"] = _ms(every, 99)
    b.figures["ingest_open_loop_p50_ms"] = _ms(every, 50)
    b.figures["ingest_open_loop_p999_ms"] = _ms(every, 99.9)
