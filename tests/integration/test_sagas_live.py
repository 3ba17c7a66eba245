"""The sagas end to end on real Postgres, Redis, Temporal and the gateway simulator.

The API and the simulator are served over real HTTP so that the bank-transfer
webhook travels from the simulator to the API and on to the saga as a signal.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from temporalio.client import Client, WorkflowFailureError

from billing.periods import period_bounds, period_of, previous_period
from workflows.billing_cycle import BillingCycleWorkflow
from workflows.refund import RefundWorkflow
from workflows.refund_messages import RefundInput

from .harness import LiveStack, live_stack

PERIOD = previous_period(period_of(datetime.now(UTC)))
PERIOD_START = period_bounds(PERIOD)[0]


@pytest.fixture
async def stack(settings, db_pool, temporal_client, tmp_path) -> AsyncIterator[LiveStack]:
    async with live_stack(settings, db_pool, temporal_client, tmp_path) as live:
        yield live


async def customer(live: LiveStack, *, tier: str, token: str, method: str = "credit_card",
                   tax_rate: str = "0") -> dict[str, Any]:  # fmt: skip
    body = {
        "name": "Ada",
        "email": f"{uuid.uuid4().hex[:10]}@example.com",
        "tier": tier,
        "tax_rate": tax_rate,
        "started_at": PERIOD_START.isoformat(),
    }
    created = await live.api.post("/v1/customers", json=body, headers=live.auth)
    assert created.status_code == 201, created.text
    cid = created.json()["id"]
    attached = await live.api.post(
        f"/v1/customers/{cid}/payment-methods", json={"type": method, "token": token},
        headers=live.auth,
    )  # fmt: skip
    assert attached.status_code == 201, attached.text
    return dict(created.json())


async def bill_period(live: LiveStack, temporal: Client, cid: str) -> dict[str, Any]:
    started = await live.api.post(
        f"/v1/customers/{cid}/billing-cycles", json={"period": PERIOD}, headers=live.auth
    )
    assert started.status_code == 202, started.text
    handle = temporal.get_workflow_handle_for(
        BillingCycleWorkflow.run, started.json()["workflow_id"]
    )
    result = await asyncio.wait_for(handle.result(), timeout=60)
    bill = await live.api.get(f"/v1/bills/{result.bill_id}", headers=live.auth)
    return dict(bill.json())


async def test_a_period_billed_twice_gives_one_bill(stack: LiveStack, temporal_client: Client):
    c = await customer(stack, tier="starter", token="tok_success")
    bill = await bill_period(stack, temporal_client, c["id"])
    assert (bill["total"], bill["status"]) == ("10.00", "paid")
    again = await stack.api.post(
        f"/v1/customers/{c['id']}/billing-cycles", json={"period": PERIOD}, headers=stack.auth
    )
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "conflict"
    # Even a cycle started around the API (another workflow id) finds the same bill.
    other = await temporal_client.execute_workflow(
        BillingCycleWorkflow.run,
        {"customer_id": c["id"], "period": PERIOD},
        id=f"bypass-{uuid.uuid4().hex[:8]}",
        task_queue=stack.settings.task_queue,
        result_type=dict,
    )
    assert other["bill_id"] == bill["id"]
    bills = (await stack.api.get(f"/v1/customers/{c['id']}/bills", headers=stack.auth)).json()
    assert [b["id"] for b in bills["bills"] if b["kind"] == "cycle"] == [bill["id"]]
    assert (await stack.sim_charges(bill_id=bill["id"]))["captures"] == 1


async def test_a_retried_charge_after_an_unknown_outcome_captures_once(
    settings, db_pool, temporal_client, tmp_path
):
    # The gateway captures, then answers after 3 s; the client gives up after 1 s.
    async with live_stack(
        settings, db_pool, temporal_client, tmp_path, gateway_timeout_s=1.0
    ) as live:
        fault = await live.sim.post(
            "/_sim/faults", json={"delay_after_capture_ms": 3000, "count": 1}
        )
        assert fault.status_code == 200
        c = await customer(live, tier="starter", token="tok_success")
        bill = await bill_period(live, temporal_client, c["id"])
        charges = await live.sim_charges(bill_id=bill["id"])
    assert bill["status"] == "paid"
    assert bill["amount_paid"] == "10.00"
    assert charges["captures"] == 1
    captured = await db_pool.fetchval(
        "SELECT count(*) FROM ledger_entries WHERE bill_id = $1 AND kind = 'captured'", bill["id"]
    )
    assert captured == 1


async def test_two_racing_partial_refunds_only_one_passes(
    stack: LiveStack, temporal_client: Client
):
    c = await customer(stack, tier="starter", token="tok_success")
    bill = await bill_period(stack, temporal_client, c["id"])
    assert bill["refundable"] == "10.00"
    # Started side by side, around the API's early check: only the saga can refuse one.
    handles = await asyncio.gather(*(
        temporal_client.start_workflow(
            RefundWorkflow.run,
            RefundInput(bill_id=bill["id"], amount=Decimal("6.00"), reason="race", request_id=r),
            id=f"refund-{bill['id']}-{r}",
            task_queue=stack.settings.task_queue,
        )
        for r in ("a", "b")
    ))  # fmt: skip
    outcomes = await asyncio.gather(*(h.result() for h in handles), return_exceptions=True)
    passed = [o for o in outcomes if not isinstance(o, BaseException)]
    refused = [o for o in outcomes if isinstance(o, WorkflowFailureError)]
    assert len(passed) == 1
    assert len(refused) == 1
    assert "refundable" in str(refused[0].cause)
    after = (await stack.api.get(f"/v1/bills/{bill['id']}", headers=stack.auth)).json()
    assert (after["amount_refunded"], after["refundable"]) == ("6.00", "4.00")
    # The API refuses a refund above what is refundable, and writes nothing.
    over = await stack.api.post(
        f"/v1/bills/{bill['id']}/refunds",
        json={"amount": "6.00", "reason": "x"},
        headers=stack.auth,
    )
    assert over.status_code == 409
    rest = await stack.api.post(
        f"/v1/bills/{bill['id']}/refunds", json={"reason": "the rest"}, headers=stack.auth
    )
    assert rest.status_code == 202
    await temporal_client.get_workflow_handle(rest.json()["workflow_id"]).result()
    final = (await stack.api.get(f"/v1/bills/{bill['id']}", headers=stack.auth)).json()
    assert (final["amount_refunded"], final["refundable"]) == ("10.00", "0.00")


async def test_enterprise_journey_paid_by_bank_transfer(stack: LiveStack, temporal_client: Client):
    c = await customer(
        stack, tier="enterprise", token="tok_success", method="bank_transfer", tax_rate="0.0825"
    )
    at = (PERIOD_START.replace(day=10)).isoformat()
    usage = [("api_call", 25_000), ("api_call", 25_000), ("llm_tokens", 2_000_000),
             ("agent_execution", 1_000)]  # fmt: skip
    events = [
        {"event_id": f"e{i}", "customer_id": c["id"], "kind": k, "quantity": q, "occurred_at": at}
        for i, (k, q) in enumerate(usage)
    ]
    batch = await stack.api.post("/v1/usage/batch", json={"events": events}, headers=stack.auth)
    assert batch.json()["accepted"] == 4, batch.text
    bill = await bill_period(stack, temporal_client, c["id"])
    amounts = {line["kind"]: line["amount"] for line in bill["lines"]}
    assert amounts == {
        "base_fee": "500.00",
        "api_call": "50.00",
        "llm_tokens": "40.00",
        "agent_execution": "10.00",
    }
    assert (bill["subtotal"], bill["tax"], bill["total"]) == ("600.00", "49.50", "649.50")
    assert bill["status"] == "paid"
    assert [a["status"] for a in bill["attempts"]] == ["succeeded"]
    assert bill["attempts"][0]["method"] == "bank_transfer"
    assert bill["attempts"][0]["authorization_code"]


async def test_manual_upgrade_and_downgrade_through_the_api(
    stack: LiveStack, temporal_client: Client
):
    c = await customer(stack, tier="starter", token="tok_success")
    up = await stack.api.post(
        f"/v1/customers/{c['id']}/upgrade", json={"tier": "professional"}, headers=stack.auth
    )
    assert up.status_code == 202
    workflow_id = up.json()["workflow_id"]
    # Every request is its own change: the id carries the tier and the request's own id.
    assert workflow_id.startswith(f"upgrade-{c['id']}-professional-")
    assert workflow_id != f"upgrade-{c['id']}-professional-"
    await temporal_client.get_workflow_handle(workflow_id).result()
    status = (await stack.api.get(f"/v1/workflows/{workflow_id}", headers=stack.auth)).json()
    assert (status["status"], status["step"]) == ("COMPLETED", "upgraded")
    assert status["details"]["customer_id"] == c["id"]
    bills = (await stack.api.get(f"/v1/customers/{c['id']}/bills", headers=stack.auth)).json()
    (upgrade_bill,) = [b for b in bills["bills"] if b["kind"] == "upgrade"]
    assert upgrade_bill["status"] == "paid"
    assert upgrade_bill["lines"][0]["kind"] == "proration"
    same = await stack.api.post(
        f"/v1/customers/{c['id']}/upgrade", json={"tier": "professional"}, headers=stack.auth
    )
    assert same.status_code == 409
    down = await stack.api.post(
        f"/v1/customers/{c['id']}/upgrade", json={"tier": "free"}, headers=stack.auth
    )
    await temporal_client.get_workflow_handle(down.json()["workflow_id"]).result()
    read = (await stack.api.get(f"/v1/customers/{c['id']}", headers=stack.auth)).json()
    assert read["tier"] == "free"
    bills = (await stack.api.get(f"/v1/customers/{c['id']}/bills", headers=stack.auth)).json()
    assert len(bills["bills"]) == 1  # a downgrade issues no bill


async def test_a_declined_upgrade_is_compensated_and_says_why(
    stack: LiveStack, temporal_client: Client, db_pool
):
    c = await customer(stack, tier="free", token="tok_card_declined")
    up = await stack.api.post(
        f"/v1/customers/{c['id']}/upgrade", json={"tier": "starter"}, headers=stack.auth
    )
    with pytest.raises(WorkflowFailureError):
        await temporal_client.get_workflow_handle(up.json()["workflow_id"]).result()
    read = (await stack.api.get(f"/v1/customers/{c['id']}", headers=stack.auth)).json()
    assert read["tier"] == "free"
    bills = (await stack.api.get(f"/v1/customers/{c['id']}/bills", headers=stack.auth)).json()
    assert [(b["kind"], b["status"]) for b in bills["bills"]] == [("upgrade", "void")]
    assert [a["decline_code"] for a in bills["bills"][0]["attempts"]] == ["card_declined"]
    why = await db_pool.fetchval(
        "SELECT message FROM saga_events WHERE customer_id = $1 AND step = 'compensated'", c["id"]
    )
    assert "compensated" in why
    assert "void bill" in why
    status = await stack.api.get(f"/v1/workflows/{up.json()['workflow_id']}", headers=stack.auth)
    assert (status.json()["status"], status.json()["step"]) == ("FAILED", "compensated")
