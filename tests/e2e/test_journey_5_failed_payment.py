"""Journey 5: a declined card keeps the bill pending; a new card pays it; refunds are bounded."""

from __future__ import annotations

from tests.e2e import journeys
from tests.e2e.api_client import Api
from tests.e2e.periods import LAST_MONTH
from tests.e2e.stack import StackFactory


async def test_a_failed_payment_then_a_new_card_then_refunds(open_stack: StackFactory):
    # The first dunning retry comes after 1 s, the next after 2 minutes: the new card
    # attached in between is what pays the bill.
    async with open_stack(dunning_schedule="1s,2m,2m") as live:
        api = Api(live.api, live.settings.billing_api_key.get_secret_value())
        seen = await journeys.failed_payment(api, LAST_MONTH, failures=2)

    declined = seen.bills["declined"]
    assert (declined["status"], declined["total"], declined["amount_paid"]) == (
        "pending", "10.00", "0.00"
    )  # fmt: skip
    assert [(a["status"], a["decline_code"]) for a in declined["attempts"]] == [
        ("failed", "insufficient_funds")
    ] * 2

    paid = seen.bills["paid"]
    assert (paid["status"], paid["amount_paid"]) == ("paid", "10.00")
    assert [a["status"] for a in paid["attempts"]] == ["failed", "failed", "succeeded"]

    refunded = seen.bills["refunded"]
    assert (refunded["status"], refunded["amount_refunded"], refunded["refundable"]) == (
        "paid", "4.00", "6.00"
    )  # fmt: skip
    too_much = seen.answers["too_much"]
    assert too_much.status_code == 409
    assert too_much.json()["error"]["code"] == "refund_refused"
    assert "6.00" in too_much.json()["error"]["message"]

    report = seen.reports[LAST_MONTH]
    assert {k: report[k] for k in ("billed", "collected", "refunded", "net", "outstanding")} == {
        "billed": "10.00",
        "collected": "10.00",
        "refunded": "4.00",
        "net": "6.00",
        "outstanding": "0.00",
    }
    assert report["payment_success_rate"] == "0.3333"  # 1 of 3 attempts
