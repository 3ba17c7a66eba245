"""The revenue report over real Postgres: exact figures from ledger rows, auth, the page, the CLI.

Each test seeds its bills in a period of its own (a far-off year no other test uses), so
the shared session database cannot change its figures.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import secrets
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import asyncpg
import httpx
import pytest

from api import cli
from api.app import create_app
from config.settings import Settings
from tests.integration.harness import serve
from tests.integration.test_customers_api import bearer, create_customer, open_api, service

_YEARS = itertools.count(random.randrange(2100, 2800, 100))


def own_period() -> str:
    """A billing period no other test writes bills in."""
    return f"{next(_YEARS)}-{random.randint(1, 12):02d}"


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with open_api(settings) as client:
        yield client


class Seed:
    """Customers, bills, ledger entries and attempts written as the sagas write them."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def customer(self, tier: str = "starter") -> str:
        cid = "cus_" + secrets.token_hex(8)
        await self.pool.execute(
            """INSERT INTO customers (id, name, email, tier, tax_rate, api_key_hash, started_at)
               VALUES ($1, 'Seed', 'seed@example.com', $2, 0, $3, $4)""",
            cid, tier, uuid.uuid4().hex, datetime(2000, 1, 1, tzinfo=UTC),
        )  # fmt: skip
        return cid

    async def bill(self, cid: str, period: str, tier: str, total: str, tax: str = "0.00", *,
                   kind: str = "cycle", entries: tuple[tuple[str, str], ...] = (),
                   attempts: tuple[str, ...] = ()) -> str:  # fmt: skip
        bid = "bill_" + secrets.token_hex(8)
        subtotal = Decimal(total) - Decimal(tax)
        await self.pool.execute(
            """INSERT INTO bills (id, customer_id, period, kind, tier, currency, lines, subtotal,
                                  tax, total, workflow_id, idempotency_key)
               VALUES ($1, $2, $3, $4, $5, 'USD', '[]'::jsonb, $6, $7, $8, 'seed', $1)""",
            bid, cid, period, kind, tier, subtotal, Decimal(tax), Decimal(total),
        )  # fmt: skip
        for n, (entry, amount) in enumerate((("issued", total), *entries)):
            await self.pool.execute(
                """INSERT INTO ledger_entries (idempotency_key, bill_id, customer_id, kind,
                                               amount, currency)
                   VALUES ($1, $2, $3, $4, $5, 'USD')""",
                f"{bid}-{n}", bid, cid, entry, Decimal(amount),
            )  # fmt: skip
        for n, status in enumerate(attempts):
            await self.pool.execute(
                """INSERT INTO charge_attempts (idempotency_key, bill_id, status, method, amount)
                   VALUES ($1, $2, $3, 'credit_card', $4)""",
                f"{bid}-a{n}", bid, status, Decimal(total),
            )  # fmt: skip
        return bid


async def seed_period(pool: asyncpg.Pool, period: str) -> list[str]:
    """Paid and partly refunded, pending, written off, void, and a paid enterprise bill."""
    seed = Seed(pool)
    ada, bob, cyd, dan = [await seed.customer() for _ in range(4)]
    await seed.bill(ada, period, "starter", "10.83", "0.83", attempts=("failed", "succeeded"),
                    entries=(("captured", "10.83"), ("refunded", "4.00")))  # fmt: skip
    await seed.bill(bob, period, "professional", "50.00", attempts=("failed", "failed"))
    await seed.bill(cyd, period, "professional", "54.13", "4.13", attempts=("failed",) * 4,
                    entries=(("written_off", "54.13"),))  # fmt: skip
    await seed.bill(dan, period, "enterprise", "449.99", kind="upgrade", attempts=("failed",),
                    entries=(("voided", "0.00"),))  # fmt: skip
    await seed.bill(ada, period, "enterprise", "649.50", "49.50", attempts=("succeeded",),
                    kind="upgrade", entries=(("captured", "649.50"),))  # fmt: skip
    # A bill of the next period must not leak in.
    await seed.bill(ada, f"{period[:4]}-{int(period[5:]) % 12 + 1:02d}", "starter", "99.00")
    return [ada, bob, cyd, dan]


def zeros() -> dict[str, Any]:
    return {"customers": 0, "bills": 0} | dict.fromkeys(cli.MONEY, "0.00")


async def test_the_report_is_derived_from_the_ledger_and_adds_up(api, settings, db_pool):
    period = own_period()
    await seed_period(db_pool, period)
    answer = await api.get("/v1/reports/revenue", params={"period": period},
                           headers=service(settings))  # fmt: skip
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "period": period,
        "currency": "USD",
        "billed": "764.46",
        "collected": "660.33",
        "refunded": "4.00",
        "net": "656.33",
        "outstanding": "50.00",
        "written_off": "54.13",
        "tax": "54.46",
        "overpaid": "0.00",
        "overpayment_refunded": "0.00",
        "payment_success_rate": "0.2000",
        "customers": 3,
        "bills": 4,
        "by_tier": {
            "free": zeros(),
            "starter": {"customers": 1, "bills": 1, "billed": "10.83", "collected": "10.83",
                        "refunded": "4.00", "net": "6.83", "outstanding": "0.00",
                        "written_off": "0.00", "tax": "0.83"},
            "professional": {"customers": 2, "bills": 2, "billed": "104.13",
                             "collected": "0.00", "refunded": "0.00", "net": "0.00",
                             "outstanding": "50.00", "written_off": "54.13", "tax": "4.13"},
            "enterprise": {"customers": 1, "bills": 1, "billed": "649.50",
                           "collected": "649.50", "refunded": "0.00", "net": "649.50",
                           "outstanding": "0.00", "written_off": "0.00", "tax": "49.50"},
        },
    }  # fmt: skip


async def test_a_range_answers_each_period_as_its_single_report(api, settings, db_pool):
    period = own_period()
    await seed_period(db_pool, period)
    year, month = period.split("-")
    first, last = f"{year}-01", f"{year}-12"
    ranged = await api.get("/v1/reports/revenue", params={"from": first, "to": last},
                           headers=service(settings))  # fmt: skip
    assert ranged.status_code == 200, ranged.text
    body = ranged.json()
    assert (body["from"], body["to"], body["currency"]) == (first, last, "USD")
    assert [p["period"] for p in body["periods"]] == [f"{year}-{m:02d}" for m in range(1, 13)]
    single = await api.get("/v1/reports/revenue", params={"period": period},
                           headers=service(settings))  # fmt: skip
    assert body["periods"][int(month) - 1] == single.json()
    billed = {p["period"]: p["billed"] for p in body["periods"] if p["billed"] != "0.00"}
    assert billed == {period: "764.46", f"{year}-{int(month) % 12 + 1:02d}": "99.00"}


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ({"period": "2026-13"}, "months are 01-12"),
        ({"period": "26-10"}, "is not YYYY-MM"),
        ({}, "period is required"),
        ({"period": "2026-10", "from": "2026-01"}, "not both"),
        ({"from": "2026-05", "to": "2026-01"}, "is after"),
        ({"from": "2020-01", "to": "2026-01"}, "at most 36 months"),
        ({"from": "2026-01"}, "period is required"),
    ],
)
async def test_bad_periods_are_422_in_the_envelope(api, settings, params, says):
    answer = await api.get("/v1/reports/revenue", params=params, headers=service(settings))
    assert answer.status_code == 422
    assert answer.json()["error"]["code"] == "invalid_input"
    assert says in answer.json()["error"]["message"]


async def test_only_the_service_key_reads_revenue(api, settings):
    anonymous = await api.get("/v1/reports/revenue", params={"period": "2026-10"})
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["code"] == "unauthenticated"
    customer = await create_customer(api, settings)
    as_customer = await api.get("/v1/reports/revenue", params={"period": "2026-10"},
                                headers=bearer(customer["api_key"]))  # fmt: skip
    assert as_customer.status_code == 403
    assert as_customer.json()["error"]["code"] == "forbidden"


async def test_the_page_charts_each_tier_per_month(api, settings, db_pool):
    period = own_period()
    await seed_period(db_pool, period)
    page = await api.get("/reports", params={"from": period, "to": period, "metric": "billed"},
                         headers=service(settings))  # fmt: skip
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in page.headers["content-security-policy"]
    html = page.text
    assert "<script" not in html
    assert html.count("http://") == html.count("http://www.w3.org/2000/svg")  # no remote asset
    for tier, value in (("free", "0.00"), ("starter", "10.83"), ("professional", "104.13"),
                        ("enterprise", "649.50")):  # fmt: skip
        assert f'<g class="series" data-tier="{tier}"' in html
        assert f'data-period="{period}" data-value="{value}"' in html
    assert "$764.46" in html  # the totals table


async def test_the_page_signs_in_with_a_key_link_a_form_or_a_header(api, settings):
    key = settings.billing_api_key.get_secret_value()
    refused = await api.get("/reports")
    assert refused.status_code == 401
    assert '<form method="post" action="/reports">' in refused.text
    link = await api.get("/reports", params={"key": key, "metric": "collected"})
    assert link.status_code == 303
    assert link.headers["location"] == "/reports?metric=collected"  # the key left the URL
    cookie = link.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert "Path=/reports" in cookie
    assert key not in cookie
    shown = await api.get("/reports?metric=collected")  # the client kept the cookie
    assert shown.status_code == 200
    assert '<svg xmlns="http://www.w3.org/2000/svg"' in shown.text
    api.cookies.clear()
    assert (await api.get("/reports", params={"key": "sk_wrong"})).status_code == 401
    api.cookies.set("billing_reports", "forged", domain="api", path="/reports")
    assert (await api.get("/reports")).status_code == 401
    api.cookies.clear()
    urlencoded = {"Content-Type": "application/x-www-form-urlencoded"}
    form = await api.post("/reports", content=f"key={key}", headers=urlencoded)
    assert form.status_code == 303
    assert (await api.get("/reports")).status_code == 200
    api.cookies.clear()
    customer = await create_customer(api, settings)
    as_customer = await api.get("/reports", headers=bearer(customer["api_key"]))
    assert as_customer.status_code == 403
    bad = await api.get("/reports", params={"metric": "profit"}, headers=service(settings))
    assert bad.status_code == 422
    assert "metric is one of" in bad.text


async def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = await asyncio.to_thread(cli.main, list(argv))
    out, err = capsys.readouterr()
    return code, out, err


async def test_the_cli_reads_reports_customers_and_bills(settings, db_pool, capsys):
    period = own_period()
    ada, *_ = await seed_period(db_pool, period)
    key = settings.billing_api_key.get_secret_value()
    async with serve(create_app(settings)) as url:
        base = ("--url", url, "--key", key)
        code, out, _ = await run_cli(capsys, *base, "report", "--period", period)
        assert code == 0
        assert f"Revenue for {period} (USD)" in out
        rows = {line.split()[0]: line.split() for line in out.splitlines() if line}
        assert rows["professional"][1:4] == ["2", "104.13", "0.00"]
        assert rows["all"][2:5] == ["3", "764.46", "660.33"]
        assert "payment success rate: 20.00%" in out
        code, out, _ = await run_cli(capsys, *base, "report", "--period", period, "--json")
        assert (code, json.loads(out)["net"]) == (0, "656.33")
        code, out, _ = await run_cli(capsys, *base, "bills", "--customer", ada)
        assert code == 0
        assert "3 bill(s) of " + ada in out
        assert "10.83" in out
        assert "649.50" in out
        code, out, _ = await run_cli(capsys, *base, "customers", "--json")
        assert code == 0
        assert ada in {c["id"] for c in json.loads(out)}
        code, _, err = await run_cli(capsys, *base, "report", "--period", "2026-13")
        assert code == 1
        assert "422 invalid_input" in err
        code, _, err = await run_cli(capsys, "--url", url, "--key", "sk_wrong", "customers")
        assert (code, "401" in err) == (1, True)
    code, _, err = await run_cli(capsys, "--url", url, "report", "--period", period)
    assert code == 2
    assert "cannot reach the API" in err
