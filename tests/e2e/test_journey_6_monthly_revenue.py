"""Journey 6: two customers billed over two periods; each month's report matches its bills."""

from __future__ import annotations

from decimal import Decimal

from tests.e2e import journeys
from tests.e2e.api_client import Api
from tests.e2e.periods import LAST_MONTH, TWO_MONTHS_AGO

# (starter, professional) totals at 10% tax: usage grows from one month to the next.
TOTALS = {TWO_MONTHS_AGO: ("13.20", "59.40"), LAST_MONTH: ("14.30", "61.60")}


def total(bills, field: str) -> str:
    return f"{sum((Decimal(b[field]) for b in bills), Decimal('0.00')):.2f}"


async def test_monthly_revenue_over_two_periods(api: Api):
    seen = await journeys.monthly_revenue(api, TWO_MONTHS_AGO, LAST_MONTH)

    for period, (starter, pro) in TOTALS.items():
        assert seen.bills[f"starter {period}"]["total"] == starter
        assert seen.bills[f"professional {period}"]["total"] == pro
    assert seen.bills[f"professional {LAST_MONTH}"]["amount_refunded"] == "5.00"

    first, second = seen.reports[TWO_MONTHS_AGO], seen.reports[LAST_MONTH]
    assert [first[k] for k in ("billed", "collected", "refunded", "net", "tax")] == [
        "72.60", "72.60", "0.00", "72.60", "6.60"
    ]  # fmt: skip
    assert [second[k] for k in ("billed", "collected", "refunded", "net", "tax")] == [
        "75.90", "75.90", "5.00", "70.90", "6.90"
    ]  # fmt: skip
    for period, report in seen.reports.items():
        bills = [seen.bills[f"{tier} {period}"] for tier in ("starter", "professional")]
        # Each report matches its own period's bills, and adds up.
        assert report["billed"] == total(bills, "total")
        assert report["collected"] == total(bills, "amount_paid")
        assert report["refunded"] == total(bills, "amount_refunded")
        assert report["tax"] == total(bills, "tax")
        assert Decimal(report["net"]) == Decimal(report["collected"]) - Decimal(report["refunded"])
        assert Decimal(report["billed"]) == (
            Decimal(report["collected"]) + Decimal(report["outstanding"])
            + Decimal(report["written_off"])
        )  # fmt: skip
        for tier, bill in zip(("starter", "professional"), bills, strict=True):
            assert report["by_tier"][tier]["billed"] == bill["total"]
            assert report["by_tier"][tier]["customers"] == 1
    assert seen.answers["range"]["periods"] == [first, second]
