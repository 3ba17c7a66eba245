"""The /reports page in headless Chromium: the chart is there, right, and self-contained."""

from __future__ import annotations

from decimal import Decimal
from urllib.parse import urlencode

from playwright.async_api import Browser

from tests.browser.conftest import DOCS, Company

TIERS = ["free", "starter", "professional", "enterprise"]

_SERIES_JS = """svg => Array.from(svg.querySelectorAll('g.series')).map(g => [
    g.dataset.tier,
    Array.from(g.querySelectorAll('rect')).map(r => [
        r.dataset.period, r.dataset.value, r.getBoundingClientRect().height])])"""


async def test_the_revenue_page_charts_net_revenue_per_tier_per_month(
    browser: Browser, company: Company
):
    months = company.history.months
    span = {"from": months[0], "to": months[-1]}
    ranged = await company.api.json("GET", "/v1/reports/revenue", params=span)
    base = str(company.live.api.base_url).rstrip("/")
    key = company.api.key

    context = await browser.new_context(viewport={"width": 1100, "height": 900})
    page = await context.new_page()
    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url))
    await page.goto(f"{base}/reports?{urlencode({'key': key, **span})}")
    # Signed in by the link, and the key has left the address bar.
    assert page.url == f"{base}/reports?{urlencode(span)}"
    chart = page.locator("svg.chart")
    await chart.wait_for()
    series = await chart.evaluate(_SERIES_JS)

    assert [tier for tier, _ in series] == TIERS
    for tier, bars in series:
        expected = [(p["period"], p["by_tier"][tier]["net"]) for p in ranged["periods"]]
        assert [(period, value) for period, value, _ in bars] == expected, tier
    # Every bar is drawn in proportion to its amount (to within the 0.1 px the SVG rounds to).
    drawn = [
        (Decimal(value), Decimal(str(height))) for _, bars in series for _, value, height in bars
    ]
    top_value, top_height = max(drawn)
    for value, height in drawn:
        assert abs(height - value * top_height / top_value) < Decimal("0.2"), (value, height)
    # The enterprise customer's first month: (500 base + 10,000 executions) x 1.08 tax.
    enterprise = {p: v for p, v, _ in dict(series)["enterprise"]}
    assert enterprise[months[3]] == "648.00"
    assert await page.locator("table.totals tr[data-period]").count() == len(months)
    # One self-contained document: nothing was fetched from anywhere else.
    assert asked
    assert all(url.startswith(base) for url in asked), asked

    DOCS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=DOCS / "reports.png", full_page=True)
    await context.close()
