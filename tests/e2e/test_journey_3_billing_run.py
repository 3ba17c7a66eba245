"""Journey 3: one billing run bills three tiers; the report aggregates them per tier."""

from __future__ import annotations

from tests.e2e import journeys
from tests.e2e.api_client import Api
from tests.e2e.periods import LAST_MONTH

# base + usage = subtotal; tax 8.25% rounded once per bill
EXPECTED = {
    "starter": ("11.00", "0.91", "11.91"),  # 10 + 1,000 calls x $0.001
    "professional": ("52.00", "4.29", "56.29"),  # 50 + 100,000 tokens x $0.02/1,000
    "enterprise": ("505.00", "41.66", "546.66"),  # 500 + 500 executions x $0.01
}


async def test_three_tiers_billed_in_one_run_and_reported_per_tier(api: Api):
    seen = await journeys.billing_run(api, LAST_MONTH)

    for tier, (subtotal, tax, total) in EXPECTED.items():
        bill = seen.bills[tier]
        assert (bill["tier"], bill["period"], bill["kind"]) == (tier, LAST_MONTH, "cycle")
        assert (bill["subtotal"], bill["tax"], bill["total"]) == (subtotal, tax, total)
        assert (bill["status"], bill["amount_paid"]) == ("paid", total)

    report = seen.reports[LAST_MONTH]
    assert {k: report[k] for k in ("billed", "collected", "refunded", "net", "outstanding",
                                   "written_off", "tax")} == {
        "billed": "614.86",
        "collected": "614.86",
        "refunded": "0.00",
        "net": "614.86",
        "outstanding": "0.00",
        "written_off": "0.00",
        "tax": "46.86",
    }  # fmt: skip
    assert (report["customers"], report["payment_success_rate"]) == (3, "1.0000")
    for tier, (_, tax, total) in EXPECTED.items():
        row = report["by_tier"][tier]
        assert (row["customers"], row["billed"], row["collected"], row["net"], row["tax"]) == (
            1, total, total, total, tax
        )  # fmt: skip
    assert report["by_tier"]["free"]["billed"] == "0.00"
