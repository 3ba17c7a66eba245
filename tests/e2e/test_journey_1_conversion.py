"""Journey 1: a free customer with a card crosses the free limit and converts to starter."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from temporalio.client import Client

from activities.ledger_messages import IssueUpgradeBillInput
from billing.bills import build_upgrade_bill
from billing.catalog import DEFAULT_CATALOG, Tier
from billing.money import format_money
from tests.e2e import journeys
from tests.e2e.api_client import Api
from tests.e2e.periods import THIS_MONTH


async def issued_at(client: Client, workflow_id: str) -> IssueUpgradeBillInput:
    """What the saga asked the ledger to bill, read back from its recorded history."""
    async for event in client.get_workflow_handle(workflow_id).fetch_history_events():
        if event.HasField("activity_task_scheduled_event_attributes"):
            scheduled = event.activity_task_scheduled_event_attributes
            if scheduled.activity_type.name == "issue_upgrade_bill":
                # The client's own converter: it opens whatever codec the payloads carry.
                [request] = await client.data_converter.decode(
                    scheduled.input.payloads, [IssueUpgradeBillInput]
                )
                assert isinstance(request, IssueUpgradeBillInput)
                return request
    raise AssertionError(f"{workflow_id} never issued an upgrade bill")


async def upgrade_workflows(client: Client, customer_id: str) -> int:
    query = f"CustomerId = '{customer_id}' AND WorkflowType = 'UpgradeWorkflow'"
    for _ in range(50):  # visibility trails the start by a moment
        if count := (await client.count_workflows(query)).count:
            return count
        await asyncio.sleep(0.1)
    return 0


async def test_free_to_starter_conversion(api: Api, temporal_client: Client):
    seen = await journeys.conversion(api)

    ada = seen.customers["ada"]
    assert seen.answers["statuses"] == [201]  # none of the 200 was refused
    assert seen.answers["usage"]["totals"]["api_call"]["quantity"] == 1_100
    assert ada["tier"] == "starter"
    assert await upgrade_workflows(temporal_client, ada["id"]) == 1

    upgrade_id = seen.answers["upgrade"]["workflow_id"]
    request = await issued_at(temporal_client, upgrade_id)
    assert (request.from_tier, request.to_tier) == ("free", "starter")
    draft = build_upgrade_bill(catalog=DEFAULT_CATALOG, from_tier=Tier.FREE,
                               to_tier=Tier.STARTER, at=request.at,
                               tax_rate=Decimal("0.0825"))  # fmt: skip
    bill = seen.bills["upgrade"]
    assert bill["lines"] == [line.model_dump(mode="json") for line in draft.lines]
    money = {k: format_money(getattr(draft, k), "USD") for k in ("subtotal", "tax", "total")}
    assert {k: bill[k] for k in money} == money
    assert Decimal(money["subtotal"]) < Decimal("10.00")  # prorated: the month has begun
    assert (bill["period"], bill["tier"], bill["status"]) == (THIS_MONTH, "starter", "paid")
    assert bill["amount_paid"] == money["total"]
    assert [a["status"] for a in bill["attempts"]] == ["succeeded"]

    report = await api.report(THIS_MONTH)
    assert (report["billed"], report["collected"], report["tax"]) == (
        money["total"], money["total"], money["tax"]
    )  # fmt: skip
    assert report["by_tier"]["starter"]["billed"] == money["total"]
