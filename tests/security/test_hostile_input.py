"""Hostile input is refused with a 4xx that names the problem, never a 500, and nothing
is written. A NUL character is valid JSON and a valid URL escape, but Postgres cannot
store it in text: it must be refused at the edge, not crash the query.
"""

from __future__ import annotations

import pytest

from tests.integration.harness import live_stack
from tests.integration.test_sagas_live import bill_period, customer

from .conftest import new_customer

NUL = "\x00"


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/v1/customers?after=a%00b", None),
        ("GET", "/v1/customers/cus_%00", None),
        ("GET", "/v1/bills/bill_%00", None),
        ("GET", "/v1/customers/cus_%00/bills", None),
        ("POST", "/v1/customers", {"name": f"A{NUL}B", "email": "nul@example.com"}),
        (
            "POST",
            "/v1/usage",
            {"event_id": "e1", "customer_id": f"c{NUL}", "kind": "api_call", "quantity": 1},
        ),  # fmt: skip
        (
            "POST",
            "/v1/usage/batch",
            {
                "events": [
                    {
                        "event_id": f"e{NUL}",
                        "customer_id": f"c{NUL}",
                        "kind": "api_call",
                        "quantity": 1,
                    }
                ]
            },
        ),  # fmt: skip
        ("POST", "/v1/billing-runs", {"period": f"2020-01{NUL}"}),
    ],
)
async def test_a_nul_character_is_a_4xx_not_a_500(api, service, db_pool, method, path, body):
    before = await db_pool.fetchval("SELECT count(*) FROM customers")
    answer = await api.request(method, path, json=body, headers=service)
    assert 400 <= answer.status_code < 500, (answer.status_code, answer.text)
    assert answer.json()["error"]["code"]
    assert await db_pool.fetchval("SELECT count(*) FROM customers") == before


async def test_a_nul_character_in_a_known_customers_usage_is_refused(api, service, db_pool):
    created = await new_customer(api, service)
    event = {"event_id": f"ev{NUL}1", "customer_id": created["id"], "kind": "llm_tokens",
             "quantity": 3}  # fmt: skip
    for path, body in (("/v1/usage", event), ("/v1/usage/batch", {"events": [event]})):
        answer = await api.post(path, json=body, headers=service)
        assert answer.status_code == 422, answer.text
    written = "SELECT count(*) FROM usage_events WHERE customer_id = $1"
    assert await db_pool.fetchval(written, created["id"]) == 0


async def test_a_refund_reason_with_a_nul_is_refused_before_a_saga_starts(
    settings, db_pool, temporal_client, tmp_path
):
    # The reason travels into the refund saga and on to Postgres: refused at the API, or the
    # saga's reservation step would fail on every retry and never finish.
    async with live_stack(settings, db_pool, temporal_client, tmp_path) as live:
        c = await customer(live, tier="starter", token="tok_success")
        bill = await bill_period(live, temporal_client, c["id"])
        answer = await live.api.post(
            f"/v1/bills/{bill['id']}/refunds",
            json={"amount": "1.00", "reason": f"bad{NUL}reason"},
            headers=live.auth,
        )
        query = f'BillId = "{bill["id"]}" AND WorkflowType = "RefundWorkflow"'
        started = [wf.id async for wf in temporal_client.list_workflows(query)]
        for workflow_id in started:  # a saga that should never have started is not left behind
            await temporal_client.get_workflow_handle(workflow_id).terminate("hostile input test")
        assert answer.status_code == 422, answer.text
        assert started == []
