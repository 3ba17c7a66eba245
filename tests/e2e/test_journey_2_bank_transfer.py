"""Journey 2: an enterprise customer with high usage pays by bank transfer."""

from __future__ import annotations

from tests.e2e import journeys
from tests.e2e.api_client import Api
from tests.e2e.periods import LAST_MONTH
from tests.e2e.stack import StackFactory


async def test_enterprise_with_high_usage_paying_by_bank_transfer(open_stack: StackFactory):
    # Settlement takes 2 s here, long enough to see the transfer pending on the way.
    async with open_stack(bank_transfer_settlement_delay="2s") as live:
        api = Api(live.api, live.settings.billing_api_key.get_secret_value())
        seen = await journeys.enterprise_bank_transfer(api, LAST_MONTH)

    first = seen.bills["first_attempt"]
    assert first["status"] == "pending"
    assert first["amount_paid"] == "0.00"
    assert [(a["status"], a["method"]) for a in first["attempts"]] == [("pending", "bank_transfer")]

    bill = seen.bills["cycle"]
    assert {line["kind"]: line["amount"] for line in bill["lines"]} == {
        "base_fee": "500.00",
        "api_call": "50.00",
        "llm_tokens": "40.00",
        "agent_execution": "10.00",
    }
    assert (bill["subtotal"], bill["tax"], bill["total"]) == ("600.00", "49.50", "649.50")
    assert (bill["status"], bill["amount_paid"]) == ("paid", "649.50")
    [attempt] = bill["attempts"]
    assert (attempt["status"], attempt["method"]) == ("succeeded", "bank_transfer")
    assert attempt["authorization_code"]
    assert attempt["gateway_reference"] == first["attempts"][0]["gateway_reference"]

    report = seen.reports[LAST_MONTH]
    assert {k: report[k] for k in ("billed", "collected", "net", "outstanding", "tax")} == {
        "billed": "649.50",
        "collected": "649.50",
        "net": "649.50",
        "outstanding": "0.00",
        "tax": "49.50",
    }
    assert report["payment_success_rate"] == "1.0000"
    assert report["by_tier"]["enterprise"]["customers"] == 1
