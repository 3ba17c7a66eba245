"""The seed's six journeys, driven over HTTP only; each answers what it saw, to be checked.

The e2e tests assert exact amounts on what these return; `scripts/demo.py` runs the same
journeys against `make run` and prints them. Periods are passed in: only ended periods
can be billed, so the callers use previous months and customers started before them.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from billing.periods import period_bounds, period_of
from tests.e2e.api_client import Api, JourneyError


@dataclass
class Seen:
    """What a journey saw: its customers, their bills, answers worth checking, reports."""

    customers: dict[str, dict[str, Any]] = field(default_factory=dict)
    bills: dict[str, dict[str, Any]] = field(default_factory=dict)
    answers: dict[str, Any] = field(default_factory=dict)
    reports: dict[str, dict[str, Any]] = field(default_factory=dict)


async def conversion(api: Api) -> Seen:
    """1. A free customer with a card crosses 1,000 calls: recorded, converted once, billed."""
    seen = Seen()
    ada = seen.customers["ada"] = await api.customer("Ada Free", token="tok_success",
                                                     tax_rate="0.0825")  # fmt: skip
    await api.record(ada["id"], [("api_call", 1)] * 900)
    singles = api.events(ada["id"], [("api_call", 1)] * 200)
    answers = await asyncio.gather(
        *(api.http.post("/v1/usage", json=e, headers=api.auth) for e in singles)
    )
    seen.answers["statuses"] = sorted({a.status_code for a in answers})
    api.say("  900 API calls in a batch, then 200 at once: the last ones cross the free limit")
    upgrade = f"upgrade-{ada['id']}-auto-starter"
    seen.answers["upgrade"] = await api.finished(upgrade)
    seen.customers["ada"] = await api.json("GET", f"/v1/customers/{ada['id']}")
    seen.bills["upgrade"] = next(b for b in await api.bills(ada["id"]) if b["kind"] == "upgrade")
    period = period_of(datetime.now(UTC))
    seen.answers["usage"] = await api.json("GET", f"/v1/customers/{ada['id']}/usage",
                                           params={"period": period})  # fmt: skip
    return seen


async def enterprise_bank_transfer(api: Api, period: str) -> Seen:
    """2. Enterprise, high usage, paying by bank transfer: pending until settlement, then paid."""
    seen = Seen()
    start = period_bounds(period)[0]
    ent = seen.customers["ent"] = await api.customer(
        "Enterprise Co", "enterprise", token="tok_success", method="bank_transfer",
        tax_rate="0.0825", started_at=start,
    )  # fmt: skip
    usage = [("api_call", 50_000), ("llm_tokens", 2_000_000), ("agent_execution", 1_000)]
    await api.record(ent["id"], usage, occurred_at=start.replace(day=10))
    started = await api.json("POST", f"/v1/customers/{ent['id']}/billing-cycles", 202,
                             json={"period": period})  # fmt: skip

    async def first_attempt() -> dict[str, Any] | None:
        # Once the gateway has answered: before that the attempt is the bill's claim, a call
        # in flight with no gateway reference yet.
        tried = [
            b
            for b in await api.bills(ent["id"])
            if b["attempts"] and b["attempts"][0]["gateway_reference"]
        ]
        return tried[0] if tried else None

    # Seen as it was first seen: pending, while the gateway has yet to settle the transfer.
    seen.bills["first_attempt"] = await api.until("a charge attempt", first_attempt)
    api.say("  the transfer is pending; the saga waits for the gateway's settlement webhook")
    await api.finished(started["workflow_id"])
    seen.bills["cycle"] = await api.cycle_bill(ent["id"], period)
    seen.reports[period] = await api.report(period)
    return seen


async def billing_run(api: Api, period: str) -> Seen:
    """3. One billing run bills a starter, a professional and an enterprise customer."""
    seen = Seen()
    start = period_bounds(period)[0]
    usage = {
        "starter": [("api_call", 1_000)],
        "professional": [("llm_tokens", 100_000)],
        "enterprise": [("agent_execution", 500)],
    }
    for tier, used in usage.items():
        made = await api.customer(f"{tier.title()} Ltd", tier, token="tok_success",
                                  tax_rate="0.0825", started_at=start)  # fmt: skip
        await api.record(made["id"], used, occurred_at=start.replace(day=3))
        seen.customers[tier] = made
    ids = [c["id"] for c in seen.customers.values()]
    for tier, bill in zip(seen.customers, await api.billing_run(period, ids), strict=True):
        seen.bills[tier] = bill
    seen.reports[period] = await api.report(period)
    return seen


async def rate_limit(api: Api) -> Seen:
    """4. A free customer who cannot convert gets 1,000 calls an hour, then 429."""
    seen = Seen()
    # Not across an hour boundary: the limit is per clock hour.
    if time.time() % 3600 > 3600 - 10:
        await asyncio.sleep(3600 - time.time() % 3600 + 0.5)
    free = seen.customers["free"] = await api.customer("Fay Free")
    seen.answers["batch"] = await api.record(free["id"], [("api_call", 1)] * 1_000)
    over = await api.http.post("/v1/usage", headers=api.auth,
                               json=api.events(free["id"], [("api_call", 1)])[0])  # fmt: skip
    seen.answers["over"] = over
    api.say(f"  call 1,001 answered {over.status_code}: {over.json()['error']['message'][:80]}...")
    seen.answers["usage"] = await api.json(
        "GET", f"/v1/customers/{free['id']}/usage", params={"period": period_of(datetime.now(UTC))}
    )
    return seen


async def failed_payment(api: Api, period: str, *, failures: int = 1) -> Seen:
    """5. Declined and dunned, still pending; a new card pays it; refunds, one too many."""
    seen = Seen()
    start = period_bounds(period)[0]
    bea = seen.customers["bea"] = await api.customer(
        "Bea Broke", "starter", token="tok_insufficient_funds", started_at=start
    )
    started = await api.json("POST", f"/v1/customers/{bea['id']}/billing-cycles", 202,
                             json={"period": period})  # fmt: skip

    async def declined() -> dict[str, Any] | None:
        bills = await api.bills(bea["id"])
        failed = [a for b in bills for a in b["attempts"] if a["status"] == "failed"]
        return bills[0] if len(failed) >= failures else None

    seen.bills["declined"] = await api.until(f"{failures} declined attempt(s)", declined)
    api.say(f"  declined {failures} time(s) (insufficient funds): the bill stays pending")
    await api.attach(bea["id"], "tok_success")
    api.say("  a new card is attached: the dunning saga tries it at once")
    await api.finished(started["workflow_id"])
    bill = seen.bills["paid"] = await api.cycle_bill(bea["id"], period)
    seen.bills["refunded"] = await api.refund(bill["id"], "4.00", "goodwill")
    api.say("  4.00 refunded")
    seen.answers["too_much"] = await api.call(
        "POST", f"/v1/bills/{bill['id']}/refunds", 409, json={"amount": "7.00", "reason": "x"}
    )
    api.say("  a 7.00 refund is refused: only 6.00 is refundable")
    seen.reports[period] = await api.report(period)
    return seen


async def monthly_revenue(api: Api, first: str, second: str) -> Seen:
    """6. Two customers over two periods: each period billed, refunded a little, reported."""
    seen = Seen()
    start = period_bounds(first)[0]
    for name, tier in (("Mo Starter", "starter"), ("Pat Pro", "professional")):
        seen.customers[tier] = await api.customer(name, tier, token="tok_success",
                                                  tax_rate="0.1", started_at=start)  # fmt: skip
    ids = [c["id"] for c in seen.customers.values()]
    mo, pat = ids
    for period, calls in ((first, 2_000), (second, 3_000)):
        on = period_bounds(period)[0].replace(day=15)
        await api.record(mo, [("api_call", calls)], occurred_at=on)
        await api.record(pat, [("llm_tokens", calls * 100)], occurred_at=on)
    for period in (first, second):
        for tier, bill in zip(("starter", "professional"), await api.billing_run(period, ids),
                              strict=True):  # fmt: skip
            seen.bills[f"{tier} {period}"] = bill
    pro_second = seen.bills[f"professional {second}"]
    seen.bills[f"professional {second}"] = await api.refund(pro_second["id"], "5.00", "credit")
    for period in (first, second):
        seen.reports[period] = await api.report(period)
    ranged = await api.json("GET", "/v1/reports/revenue", params={"from": first, "to": second})
    seen.answers["range"] = ranged
    if [p["period"] for p in ranged["periods"]] != [first, second]:
        raise JourneyError(f"the range report has the wrong periods: {ranged}")
    return seen
