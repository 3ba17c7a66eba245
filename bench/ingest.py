"""Usage ingestion through the API, against a raw COPY of the same rows into the same table.

Batch: 1,000-event batches from 8 concurrent clients, each batch spanning several customers
(as a metering pipeline sends them). Baseline: the same rows, priced as the API prices
them, copied with asyncpg's `copy_records_to_table` in the same 1,000-row transactions
from 8 connections: the most Postgres can take in this shape on this machine.

Single: one event per `POST /v1/usage` (an api_call, so the limiter checks every one),
sent with the customer's own key as customers send it, or with the service key.
Every measured batch run starts from an empty `usage_events` and ends by counting it.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg

from bench.data import USAGE_COLUMNS, UsageRow, priced_row
from bench.loadgen import LoadResult, Request, post_all, post_open_loop
from billing.catalog import Tier, UsageKind

BATCH = 1_000
CLIENTS = 8
CUSTOMERS_PER_BATCH = 10
TIER = Tier.PROFESSIONAL  # limited (100,000 api calls an hour), so the limiter does its work


@dataclass(frozen=True)
class Events:
    """One run's events, as JSON bodies for the API and as rows for COPY."""

    bodies: list[bytes]
    rows: list[list[UsageRow]]  # one list per batch

    @property
    def count(self) -> int:
        return sum(len(batch) for batch in self.rows)


def batch_events(run: str, customers: list[str], batches: int, size: int = BATCH) -> Events:
    """`batches` batches of `size` events, each over CUSTOMERS_PER_BATCH customers."""
    now = datetime.now(UTC)
    per_customer = size // CUSTOMERS_PER_BATCH
    bodies: list[bytes] = []
    rows: list[list[UsageRow]] = []
    for b in range(batches):
        events: list[dict[str, object]] = []
        batch_rows: list[UsageRow] = []
        for c in range(CUSTOMERS_PER_BATCH):
            cid = customers[(b * CUSTOMERS_PER_BATCH + c) % len(customers)]
            for i in range(per_customer):
                kind, quantity = _kind(i)
                event_id = f"{run}-{b}-{c}-{i}"
                events.append(
                    {"event_id": event_id, "customer_id": cid, "kind": kind.value,
                     "quantity": quantity, "occurred_at": now.isoformat()}
                )  # fmt: skip
                batch_rows.append(priced_row(cid, event_id, kind, quantity, now, TIER))
        bodies.append(json.dumps({"events": events}).encode())
        rows.append(batch_rows)
    return Events(bodies, rows)


def single_events(
    run: str, customers: list[str], count: int, auth: Mapping[str, Mapping[str, str]]
) -> list[Request]:
    """One api_call per request, customers in turn, each with `auth[customer]`'s headers."""
    requests: list[Request] = []
    for n in range(count):
        cid = customers[n % len(customers)]
        body = {"event_id": f"{run}-{n}", "customer_id": cid,
                "kind": UsageKind.API_CALL.value, "quantity": 1}  # fmt: skip
        requests.append(Request(json.dumps(body).encode(), auth[cid]))
    return requests


def _kind(i: int) -> tuple[UsageKind, int]:
    kinds = ((UsageKind.API_CALL, 1), (UsageKind.LLM_TOKENS, 1_500), (UsageKind.AGENT_EXECUTION, 1))
    return kinds[i % len(kinds)]


async def empty_usage(pool: asyncpg.Pool) -> None:
    await pool.execute("TRUNCATE usage_events")


async def stored_events(pool: asyncpg.Pool) -> int:
    count: int = await pool.fetchval("SELECT count(*) FROM usage_events")
    return count


async def ingest_batches(api_url: str, auth: Mapping[str, str], events: Events) -> LoadResult:
    requests = [Request(body, auth) for body in events.bodies]
    return await post_all(f"{api_url}/v1/usage/batch", requests, concurrency=CLIENTS)


async def copy_batches(pool: asyncpg.Pool, events: Events) -> float:
    """Seconds to COPY every batch, CLIENTS connections at a time, one transaction each."""
    pending = list(reversed(events.rows))

    async def one_connection() -> None:
        async with pool.acquire() as conn:
            while pending:
                await conn.copy_records_to_table(
                    "usage_events", records=pending.pop(), columns=USAGE_COLUMNS
                )

    began = time.perf_counter()
    await asyncio.gather(*(one_connection() for _ in range(CLIENTS)))
    return time.perf_counter() - began


async def ingest_single(api_url: str, requests: list[Request], concurrency: int) -> LoadResult:
    """Closed loop: `concurrency` clients, each sending its next event when answered."""
    return await post_all(f"{api_url}/v1/usage", requests, concurrency=concurrency)


async def ingest_open_loop(
    api_url: str, requests: list[Request], rate: float, connections: int
) -> LoadResult:
    """Open loop: one event due every 1/rate seconds, whatever the answers do."""
    return await post_open_loop(f"{api_url}/v1/usage", requests, rate=rate, connections=connections)
