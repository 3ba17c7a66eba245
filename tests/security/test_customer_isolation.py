"""A customer key reaches its own customer only: every route, and nothing is written.

Customer A's key is sent against customer B's resources (B has a bill, a running-then-
finished workflow, usage), and against the routes only the service key may call. Every
answer is 403; afterwards B's rows are exactly what they were. A's key on A's own
resources answers 200, so the 403s come from the check, not from a broken key. The
route table is compared with the OpenAPI paths: a new route fails this test until it
is added here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.integration.harness import LiveStack, live_stack
from tests.integration.test_sagas_live import PERIOD, bill_period, customer

# Routes a customer key is refused on whoever it names, and why they are not in the table.
NOT_CUSTOMER_ROUTES = {
    ("get", "/healthz"): "no key at all: says only which dependency is down",
    ("post", "/v1/webhooks/gateway"): "authenticated by the gateway's HMAC signature",
}


@dataclass
class Two:
    live: LiveStack
    a: dict[str, Any]
    b: dict[str, Any]
    b_bill: dict[str, Any]
    b_workflow: str

    def key(self, who: dict[str, Any]) -> dict[str, str]:
        return {"Authorization": f"Bearer {who['api_key']}"}


@pytest.fixture
async def two(settings, db_pool, temporal_client, tmp_path) -> AsyncIterator[Two]:
    async with live_stack(settings, db_pool, temporal_client, tmp_path) as live:
        a = await customer(live, tier="starter", token="tok_success")
        b = await customer(live, tier="starter", token="tok_success")
        bill = await bill_period(live, temporal_client, b["id"])
        yield Two(live, a, b, bill, f"bill-{b['id']}-{PERIOD}")


def _requests(t: Two) -> dict[tuple[str, str], tuple[str, dict[str, Any] | None]]:
    """(method, OpenAPI path) -> (the concrete path aimed at B or a service route, body)."""
    b, bill = t.b["id"], t.b_bill["id"]
    event = {"event_id": "intruder", "customer_id": b, "kind": "api_call", "quantity": 1}
    return {
        ("get", "/v1/customers"): ("/v1/customers", None),
        ("post", "/v1/customers"): ("/v1/customers", {"name": "X", "email": "x@example.com"}),
        ("get", "/v1/customers/{customer_id}"): (f"/v1/customers/{b}", None),
        ("post", "/v1/customers/{customer_id}/payment-methods"): (
            f"/v1/customers/{b}/payment-methods",
            {"type": "credit_card", "token": "tok_success"},
        ),
        ("get", "/v1/customers/{customer_id}/usage"): (
            f"/v1/customers/{b}/usage?period={PERIOD}",
            None,
        ),
        ("post", "/v1/usage"): ("/v1/usage", event),
        ("post", "/v1/usage/batch"): ("/v1/usage/batch", {"events": [event]}),
        ("get", "/v1/bills/{bill_id}"): (f"/v1/bills/{bill}", None),
        ("get", "/v1/customers/{customer_id}/bills"): (f"/v1/customers/{b}/bills", None),
        ("post", "/v1/bills/{bill_id}/pay"): (f"/v1/bills/{bill}/pay", None),
        ("post", "/v1/bills/{bill_id}/refunds"): (
            f"/v1/bills/{bill}/refunds",
            {"amount": "1.00", "reason": "mine now"},
        ),
        ("post", "/v1/customers/{customer_id}/upgrade"): (
            f"/v1/customers/{b}/upgrade",
            {"tier": "professional"},
        ),
        ("post", "/v1/customers/{customer_id}/billing-cycles"): (
            f"/v1/customers/{b}/billing-cycles",
            {"period": PERIOD},
        ),
        ("post", "/v1/billing-runs"): ("/v1/billing-runs", {"period": PERIOD}),
        ("get", "/v1/workflows/{workflow_id}"): (f"/v1/workflows/{t.b_workflow}", None),
        ("get", "/v1/reports/revenue"): (f"/v1/reports/revenue?period={PERIOD}", None),
        ("post", "/v1/reconciliations"): ("/v1/reconciliations", None),
        ("get", "/v1/reconciliations/{reconciliation_id}"): ("/v1/reconciliations/rec_x", None),
        # Webhooks are the operator's: every route wants the service key, whatever it names.
        ("post", "/v1/webhook-endpoints"): (
            "/v1/webhook-endpoints",
            {"url": "https://example.com/hooks"},
        ),
        ("get", "/v1/webhook-endpoints"): ("/v1/webhook-endpoints", None),
        ("get", "/v1/webhook-endpoints/{endpoint_id}"): ("/v1/webhook-endpoints/we_x", None),
        ("patch", "/v1/webhook-endpoints/{endpoint_id}"): (
            "/v1/webhook-endpoints/we_x",
            {"enabled": False},
        ),
        ("delete", "/v1/webhook-endpoints/{endpoint_id}"): ("/v1/webhook-endpoints/we_x", None),
        ("post", "/v1/webhook-endpoints/{endpoint_id}/rotate-secret"): (
            "/v1/webhook-endpoints/we_x/rotate-secret",
            None,
        ),
        ("get", "/v1/webhook-endpoints/{endpoint_id}/deliveries"): (
            "/v1/webhook-endpoints/we_x/deliveries",
            None,
        ),
        ("get", "/v1/events"): (f"/v1/events?customer_id={b}", None),
        ("get", "/v1/events/{event_id}"): ("/v1/events/evt_x", None),
        ("post", "/v1/events/{event_id}/redeliver"): ("/v1/events/evt_x/redeliver", None),
        ("post", "/codec/decode"): ("/codec/decode", {"payloads": []}),
        ("post", "/codec/encode"): ("/codec/encode", {"payloads": []}),
    }


# The codec server knows only the service key: any other key is a 401 there.
_REFUSED = {"/codec/decode": {401, 403}, "/codec/encode": {401, 403}}

_B_ROWS = {
    "customer": "SELECT tier || status FROM customers WHERE id = $1",
    "payment_methods": "SELECT count(*) FROM payment_methods WHERE customer_id = $1",
    "usage_events": "SELECT count(*) FROM usage_events WHERE customer_id = $1",
    "bills": "SELECT count(*) FROM bills WHERE customer_id = $1",
    "ledger": "SELECT count(*) FROM ledger_entries WHERE customer_id = $1",
    "attempts": "SELECT count(*) FROM charge_attempts a JOIN bills b ON b.id = a.bill_id"
    " WHERE b.customer_id = $1",
    "refunds": "SELECT count(*) FROM refunds r JOIN bills b ON b.id = r.bill_id"
    " WHERE b.customer_id = $1",
}


async def _b_state(t: Two, temporal) -> dict[str, Any]:
    state = {name: await t.live.pool.fetchval(q, t.b["id"]) for name, q in _B_ROWS.items()}
    state["customers"] = await t.live.pool.fetchval("SELECT count(*) FROM customers")
    query = f'CustomerId = "{t.b["id"]}"'
    state["workflows"] = sorted([wf.id async for wf in temporal.list_workflows(query)])
    runs = 'WorkflowType = "BillingRunWorkflow"'
    state["billing_runs"] = len([wf.id async for wf in temporal.list_workflows(runs)])
    return state


async def test_a_customer_key_cannot_reach_another_customer_on_any_route(two, temporal_client):
    api = two.live.api
    own = two.key(two.a)
    a = two.a["id"]
    # A's key works on A's own customer, bills and usage: the refusals below are real.
    for path in (f"/v1/customers/{a}", f"/v1/customers/{a}/bills",
                 f"/v1/customers/{a}/usage?period={PERIOD}"):  # fmt: skip
        assert (await api.get(path, headers=own)).status_code == 200, path
    before = await _b_state(two, temporal_client)
    answers = {}
    for (method, route), (path, body) in _requests(two).items():
        answer = await api.request(method.upper(), path, json=body, headers=own)
        answers[method, route] = answer.status_code
        allowed = _REFUSED.get(route, {403})
        assert answer.status_code in allowed, (method, path, answer.status_code, answer.text)
        if answer.status_code == 403:
            assert answer.json()["error"]["code"] == "forbidden"
    # A batch that mixes A's own event with one of B's is refused whole.
    mine = {"event_id": "mixed-own", "customer_id": a, "kind": "api_call", "quantity": 1}
    theirs = {**mine, "event_id": "mixed-theirs", "customer_id": two.b["id"]}
    mixed = await api.post("/v1/usage/batch", json={"events": [mine, theirs]}, headers=own)
    assert mixed.status_code == 403
    written = "SELECT count(*) FROM usage_events WHERE event_id LIKE 'mixed-%'"
    assert await two.live.pool.fetchval(written) == 0
    # Nothing of B changed, no customer and no billing run was created.
    assert await _b_state(two, temporal_client) == before
    # The service key would have been let through, so the table's paths are real.
    shown = await api.get(f"/v1/bills/{two.b_bill['id']}", headers=two.live.auth)
    assert shown.status_code == 200


async def test_every_route_is_in_the_table(two):
    spec = (await two.live.api.get("/openapi.json")).json()
    routes = {(m, p) for p, ops in spec["paths"].items() for m in ops}
    covered = set(_requests(two)) | set(NOT_CUSTOMER_ROUTES)
    assert routes - covered == set(), "add the new route to _requests (or say why not)"
    assert covered - routes == set()


async def test_a_customer_key_on_the_revenue_page_is_refused(two):
    page = await two.live.api.get("/reports", headers=two.key(two.a))
    assert page.status_code == 403
