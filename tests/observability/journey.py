"""A customer journey over the live stack's HTTP API: customers, usage, bills, refunds."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

from temporalio.client import Client

from billing.periods import period_bounds, period_of, previous_period
from tests.integration.harness import LiveStack
from workflows.billing_cycle import BillingCycleWorkflow

PERIOD = previous_period(period_of(datetime.now(UTC)))
PERIOD_START = period_bounds(PERIOD)[0]


async def customer(live: LiveStack, *, tier: str, token: str | None = None,
                   email: str | None = None) -> dict[str, Any]:  # fmt: skip
    body = {
        "name": "Ada",
        "email": email or f"{uuid.uuid4().hex[:10]}@example.com",
        "tier": tier,
        "started_at": PERIOD_START.isoformat(),
    }
    created = await live.api.post("/v1/customers", json=body, headers=live.auth)
    assert created.status_code == 201, created.text
    cid = created.json()["id"]
    if token is not None:
        attached = await live.api.post(
            f"/v1/customers/{cid}/payment-methods",
            json={"type": "credit_card", "token": token},
            headers=live.auth,
        )
        assert attached.status_code == 201, attached.text
    return dict(created.json())


async def usage(live: LiveStack, cid: str, kind: str, quantity: int, event_id: str) -> int:
    body = {"event_id": event_id, "customer_id": cid, "kind": kind, "quantity": quantity}
    return (await live.api.post("/v1/usage", json=body, headers=live.auth)).status_code


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


async def refund(live: LiveStack, temporal: Client, bill_id: str, amount: str,
                 reason: str) -> str:  # fmt: skip
    """Start a refund through the API and wait for its saga; returns the workflow id."""
    started = await live.api.post(
        f"/v1/bills/{bill_id}/refunds",
        json={"amount": amount, "reason": reason},
        headers=live.auth,
    )
    assert started.status_code == 202, started.text
    workflow_id = str(started.json()["workflow_id"])
    await asyncio.wait_for(temporal.get_workflow_handle(workflow_id).result(), timeout=60)
    return workflow_id
