"""Six months of a small company's billing, through the API and the real sagas.

Customers join over time (some mid-month, prorated), use more each month, and are billed
by one billing run per month; two bills are partly refunded and one card keeps being
declined, so the chart has growth, refunds and an outstanding bill to show.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from billing.periods import period_bounds, previous_period
from tests.e2e.api_client import Api
from tests.e2e.periods import LAST_MONTH

MONTHS = 6


def last_months(n: int = MONTHS) -> list[str]:
    """The n ended months before this one, oldest first."""
    months = [LAST_MONTH]
    while len(months) < n:
        months.insert(0, previous_period(months[0]))
    return months


# (name, tier, joins in month index, joins on day, usage kind, usage per month index + 1)
PEOPLE = [
    ("Fern Free", "free", 0, 1, "llm_tokens", 5_000),
    ("Finn Free", "free", 2, 1, "agent_execution", 50),
    ("Sam Starter", "starter", 0, 1, "api_call", 150),
    ("Sue Starter", "starter", 0, 1, "llm_tokens", 20_000),
    ("Sid Starter", "starter", 1, 15, "api_call", 250),
    ("Sol Starter", "starter", 2, 1, "agent_execution", 100),
    ("Sky Starter", "starter", 3, 1, "api_call", 300),
    ("Sia Starter", "starter", 4, 10, "api_call", 400),
    ("Pia Pro", "professional", 0, 1, "llm_tokens", 150_000),
    ("Pat Pro", "professional", 2, 1, "api_call", 1_500),
    ("Pax Pro", "professional", 4, 20, "agent_execution", 600),
    ("Enterprise Co", "enterprise", 3, 1, "agent_execution", 2_500),
]


@dataclass
class History:
    months: list[str]
    customers: dict[str, dict[str, Any]] = field(default_factory=dict)
    bills: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)


async def six_months(api: Api) -> History:
    history = History(months=last_months())
    months = history.months
    for name, tier, joins, day, kind, per_month in PEOPLE:
        started = period_bounds(months[joins])[0].replace(day=day)
        # Free customers have no card (they cannot convert); Sky's card is always declined.
        token = {"free": None}.get(tier, "tok_success")
        if name == "Sky Starter":
            token = "tok_insufficient_funds"
        made = await api.customer(name, tier, token=token, tax_rate="0.08", started_at=started)
        history.customers[name] = made
        for i in range(joins, MONTHS):
            on = period_bounds(months[i])[0].replace(day=max(day, 2))
            await api.record(made["id"], [(kind, per_month * (i + 1))], occurred_at=on)
    for i, month in enumerate(months):
        billed = [n for n, _, joins, *_ in PEOPLE if joins <= i and n != "Sky Starter"]
        ids = [history.customers[n]["id"] for n in billed]
        # Sky's card is declined: that bill stays pending in dunning, so nobody waits for it.
        for name, bill in zip(billed, await api.billing_run(month, ids), strict=True):
            history.bills[name, month] = bill
    pia, ent = history.bills["Pia Pro", months[-2]], history.bills["Enterprise Co", months[-1]]
    history.bills["Pia Pro", months[-2]] = await api.refund(pia["id"], "20.00", "outage credit")
    history.bills["Enterprise Co", months[-1]] = await api.refund(
        ent["id"], "150.00", "service credit: SLA missed on the 12th"
    )
    return history
