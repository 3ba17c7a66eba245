"""Money that reaches the gateway outside a saga reaches the ledger: the late webhook path.

A bank transfer made behind the service's back (as from the gateway's dashboard) settles
after the bill was already paid by card. No saga waits for it, so the signed webhook
starts PaymentReceivedWorkflow: the capture is recorded against its bill, and the excess
is refunded from that transfer. The books then match the gateway, bill by bill.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
from temporalio.client import Client

from billing.workflow_ids import overpayment_refund_id, payment_received_id

from .harness import LiveStack, live_stack
from .test_sagas_live import bill_period, customer


@pytest.fixture
async def stack(settings, db_pool, temporal_client, tmp_path) -> AsyncIterator[LiveStack]:
    async with live_stack(settings, db_pool, temporal_client, tmp_path) as live:
        yield live


async def test_a_late_settlement_beside_a_card_payment_is_recorded_and_refunded(
    stack: LiveStack, temporal_client: Client
):
    c = await customer(stack, tier="starter", token="tok_success")
    bill = await bill_period(stack, temporal_client, c["id"])
    assert (bill["status"], bill["amount_paid"]) == ("paid", "10.00")
    stack.allow_captures(bill["id"], 2)
    made = await stack.sim.post(
        "/_sim/charges",
        json={"bill_id": bill["id"], "amount": "10.00", "currency": "USD",
              "token": "tok_success", "method_type": "bank_transfer"},
    )  # fmt: skip
    assert made.status_code == 200, made.text
    reference = made.json()["gateway_reference"]
    # The transfer settles (500 ms), the webhook finds no saga and records the payment.
    handle = temporal_client.get_workflow_handle(payment_received_id(reference))
    async with asyncio.timeout(30):
        while True:
            try:
                result = await handle.result()
                break
            except Exception:
                await asyncio.sleep(0.2)
    assert (result["recorded"], result["status"]) == (True, "paid")
    assert Decimal(result["excess_refunded"]) == Decimal("10.00")
    refund = temporal_client.get_workflow_handle(overpayment_refund_id(bill["id"], reference))
    assert (await refund.result())["outcome"] == "refunded"
    after = (await stack.api.get(f"/v1/bills/{bill['id']}", headers=stack.auth)).json()
    assert (after["amount_paid"], after["amount_refunded"], after["status"]) == (
        "20.00",
        "10.00",
        "paid",
    )
    refunds = (await stack.sim.get("/_sim/refunds", params={"charge_reference": reference})).json()
    assert refunds["refunded_total"] == "10.00"  # back to the transfer that overpaid
