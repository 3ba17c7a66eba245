"""`make demo`: the seed's six journeys against the `make run` stack, told as they happen.

    python -m scripts.demo [--url http://127.0.0.1:8000] [--key ...] [--ui http://127.0.0.1:8233]

Run from the repository root while `make run` is up. Every customer it makes is new, so it
can run again and again; the billing runs it starts bill every customer of the dev
database for those months (those already billed are skipped). Afterwards the Temporal Web
UI has real workflows to inspect: the links at the end filter it by each customer.
Exit status: 0 done, 1 a journey did not go as expected, 2 the stack is not up.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote, urlencode

import httpx

from config.settings import DEV_API_KEY
from tests.e2e import journeys
from tests.e2e.api_client import Api, JourneyError
from tests.e2e.periods import LAST_MONTH, THIS_MONTH, TWO_MONTHS_AGO


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def ui_link(ui: str, customer_id: str) -> str:
    query = quote(f'CustomerId="{customer_id}"')
    return f"{ui}/namespaces/default/workflows?query={query}"


def figures(report: dict[str, Any]) -> str:
    keys = ("billed", "collected", "refunded", "net", "outstanding", "tax")
    shown = ", ".join(f"{k} {report[k]}" for k in keys)
    return f"{shown}, payment success {report['payment_success_rate']}"


async def run(api: Api) -> dict[str, str]:
    """Every journey in turn; answers customer name -> id for the closing links."""
    seen: dict[str, str] = {}
    steps: list[tuple[str, Callable[[], Awaitable[journeys.Seen]]]] = [
        ("1. Free to starter conversion (900, then 200 API calls)",
         lambda: journeys.conversion(api)),
        ("2. Enterprise customer paying by bank transfer",
         lambda: journeys.enterprise_bank_transfer(api, LAST_MONTH)),
        ("5. A failed payment, a new card, a partial refund, a refund refused",
         lambda: journeys.failed_payment(api, LAST_MONTH)),
        ("3. Starter, professional and enterprise billed in one billing run",
         lambda: journeys.billing_run(api, LAST_MONTH)),
        ("4. Rate limiting protects the free tier",
         lambda: journeys.rate_limit(api)),
        ("6. Monthly revenue over two periods",
         lambda: journeys.monthly_revenue(api, TWO_MONTHS_AGO, LAST_MONTH)),
    ]  # fmt: skip
    for title, journey in steps:
        say(f"\n== {title}")
        done = await journey()
        for customer in done.customers.values():
            seen[customer["name"]] = customer["id"]
        for label, bill in done.bills.items():
            say(f"  bill {label}: {bill['id']} {bill['total']} {bill['currency']} {bill['status']}")
    return seen


async def main_async(args: argparse.Namespace) -> int:
    async with httpx.AsyncClient(base_url=args.url, timeout=30) as http:
        try:
            health = await http.get("/healthz")
        except httpx.TransportError:
            say(f"The API does not answer at {args.url}: start the stack with `make run` first.")
            return 2
        if health.status_code != 200:
            say(f"The stack is not healthy yet: {health.text[:300]}")
            return 2
        api = Api(http, args.key, say=say, timeout_s=180)
        say(f"Billing demo against {args.url}, this month {THIS_MONTH}")
        try:
            customers = await run(api)
            for period in (TWO_MONTHS_AGO, LAST_MONTH, THIS_MONTH):
                report = await api.report(period)
                say(f"\nRevenue {period} (the whole dev database): {figures(report)}")
        except JourneyError as exc:
            say(f"\nThe demo stopped: {exc}")
            return 1
    say("\nThe Temporal Web UI, filtered by each customer:")
    for name, cid in customers.items():
        say(f"  {name:<22} {ui_link(args.ui, cid)}")
    span = {"from": TWO_MONTHS_AGO, "to": THIS_MONTH, "key": args.key}
    say(f"\nRevenue page: {args.url}/reports?{urlencode(span)}")
    say(f"Operator CLI: billing report --period {LAST_MONTH}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(prog="demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=os.environ.get("BILLING_API_URL", "http://127.0.0.1:8000"))
    parser.add_argument("--key", default=os.environ.get("BILLING_API_KEY", DEV_API_KEY))
    parser.add_argument("--ui", default=os.environ.get("TEMPORAL_UI_URL", "http://127.0.0.1:8233"))
    return asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
