"""Reconciliation on real Postgres, Temporal and the gateway simulator, through the API.

A capture made at the gateway's dashboard (`POST /_sim/charges`) is found, recorded and
its excess refunded; one naming an unknown bill is listed as unresolved; a second run
over the same window fixes nothing.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from temporalio.client import Client

from api import cli
from workflows.reconciliation import ReconciliationWorkflow

from .harness import LiveStack, live_stack
from .test_sagas_live import bill_period, customer


@pytest.fixture
async def stack(settings, db_pool, temporal_client, tmp_path) -> AsyncIterator[LiveStack]:
    async with live_stack(settings, db_pool, temporal_client, tmp_path) as live:
        yield live


def _since() -> str:
    return (datetime.now(UTC) - timedelta(hours=1)).isoformat()


async def reconcile(
    live: LiveStack, temporal: Client, *, key: str | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Start one through the API, wait for its workflow, answer (202 body, saved report)."""
    headers = live.auth | ({"Idempotency-Key": key} if key else {})
    started = await live.api.post("/v1/reconciliations", json={"since": _since()}, headers=headers)
    assert started.status_code == 202, started.text
    body = started.json()
    handle = temporal.get_workflow_handle_for(ReconciliationWorkflow.run, body["workflow_id"])
    result = await asyncio.wait_for(handle.result(), timeout=90)
    report = await live.api.get(f"/v1/reconciliations/{body['id']}", headers=live.auth)
    assert report.status_code == 200, report.text
    saved = report.json()
    assert saved["status"] == "completed"
    assert (saved["checked"], saved["matched"]) == (result.checked, result.matched)
    assert saved["checked"] == saved["matched"] + len(saved["fixed"]) + len(saved["unresolved"])
    return body, saved


async def dashboard_capture(live: LiveStack, bill_id: str, amount: str = "10.00") -> str:
    made = await live.sim.post(
        "/_sim/charges",
        json={"bill_id": bill_id, "amount": amount, "currency": "USD", "token": "tok_success"},
    )
    assert made.status_code == 200, made.text
    assert made.json()["status"] == "succeeded"
    reference: str = made.json()["gateway_reference"]
    return reference


async def ledger_captures(live: LiveStack, bill_id: str) -> list[str]:
    rows = await live.pool.fetch(
        "SELECT gateway_reference FROM ledger_entries WHERE bill_id = $1 AND kind = 'captured'"
        " ORDER BY id",
        bill_id,
    )
    return [r["gateway_reference"] for r in rows]


async def test_a_dashboard_capture_is_found_recorded_and_its_excess_refunded(
    stack: LiveStack, temporal_client: Client
):
    c = await customer(stack, tier="starter", token="tok_success")
    bill = await bill_period(stack, temporal_client, c["id"])
    assert (bill["status"], bill["amount_paid"]) == ("paid", "10.00")
    stack.allow_captures(bill["id"], 2)  # the saga's, and the dashboard's (refunded)
    second = await dashboard_capture(stack, bill["id"])
    assert second not in await ledger_captures(stack, bill["id"])

    key = f"rec-{uuid.uuid4().hex[:8]}"
    started, report = await reconcile(stack, temporal_client, key=key)
    assert started["workflow_id"] == f"reconciliation-{key}"
    assert report["unresolved"] == []
    (fixed,) = report["fixed"]
    assert fixed["kind"] == "capture"
    assert fixed["gateway_reference"] == second
    assert fixed["bill_id"] == bill["id"]
    assert (Decimal(fixed["amount"]), fixed["currency"]) == (Decimal("10.00"), "USD")
    assert Decimal(fixed["excess_refunded"]) == Decimal("10.00")
    assert second in await ledger_captures(stack, bill["id"])
    after = (await stack.api.get(f"/v1/bills/{bill['id']}", headers=stack.auth)).json()
    paid, refunded = Decimal(after["amount_paid"]), Decimal(after["amount_refunded"])
    assert paid - refunded == Decimal(after["total"])
    assert after["status"] == "paid"
    # The seller's systems hear of it: one discrepancy event, written with the report.
    events = await stack.api.get(
        "/v1/events",
        params={"customer_id": c["id"], "type": "reconciliation.discrepancy"},
        headers=stack.auth,
    )
    (event,) = events.json()["events"]
    assert (event["data"]["finding"], event["data"]["gateway_reference"]) == ("fixed", second)

    # The same Idempotency-Key: the same run, nothing new started.
    again = await stack.api.post(
        "/v1/reconciliations", json={}, headers=stack.auth | {"Idempotency-Key": key}
    )
    assert again.status_code == 202, again.text
    assert (again.json()["workflow_id"], again.json()["id"]) == (
        started["workflow_id"],
        started["id"],
    )

    # A new run over the same window: everything, the overpayment refund too, matches.
    _, rerun = await reconcile(stack, temporal_client)
    assert (rerun["fixed"], rerun["unresolved"]) == ([], [])
    assert rerun["matched"] == rerun["checked"] >= 3


async def test_a_capture_for_an_unknown_bill_is_unresolved(
    stack: LiveStack, temporal_client: Client
):
    unknown = f"bill_{uuid.uuid4().hex[:16]}"
    reference = await dashboard_capture(stack, unknown, "3.00")
    _, report = await reconcile(stack, temporal_client)
    assert report["fixed"] == []
    (item,) = report["unresolved"]
    assert (item["kind"], item["gateway_reference"], item["bill_id"]) == (
        "charge",
        reference,
        unknown,
    )
    assert Decimal(item["amount"]) == Decimal("3.00")
    assert "does not exist" in item["reason"]
    # Money nobody can tie to a bill fails the books check too, rightly: the simulator
    # forgets it so that this stack's closing check looks at the rest.
    assert (await stack.sim.post("/_sim/reset")).status_code == 200


async def test_a_second_run_fixes_nothing(stack: LiveStack, temporal_client: Client):
    c = await customer(stack, tier="starter", token="tok_success")
    await bill_period(stack, temporal_client, c["id"])
    _, first = await reconcile(stack, temporal_client)
    _, second = await reconcile(stack, temporal_client)
    for report in (first, second):
        assert (report["checked"], report["matched"]) == (1, 1)
        assert (report["fixed"], report["unresolved"]) == ([], [])


async def test_the_report_is_the_service_keys_and_404_when_unknown(stack: LiveStack):
    missing = await stack.api.get("/v1/reconciliations/rec_nothing", headers=stack.auth)
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    anonymous = await stack.api.post("/v1/reconciliations", json={})
    assert anonymous.status_code == 401
    c = await customer(stack, tier="starter", token="tok_success")
    own = {"Authorization": f"Bearer {c['api_key']}"}
    assert (await stack.api.post("/v1/reconciliations", json={}, headers=own)).status_code == 403
    assert (await stack.api.get("/v1/reconciliations/x", headers=own)).status_code == 403
    naive = await stack.api.post(
        "/v1/reconciliations", json={"since": "2026-01-01T00:00:00"}, headers=stack.auth
    )
    assert naive.status_code == 422
    assert "since" in naive.json()["error"]["message"]


async def test_the_cli_reconciles_and_prints_the_summary(stack: LiveStack, capsys):
    key = stack.settings.billing_api_key.get_secret_value()
    argv = ["--url", str(stack.api.base_url), "--key", key, "reconcile", "--since", _since()]
    code = await asyncio.to_thread(cli.main, argv)
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "checked 0, matched 0, fixed 0, unresolved 0" in out


async def test_a_refund_made_at_the_gateway_is_recorded_against_its_bill(
    stack: LiveStack, temporal_client: Client
):
    c = await customer(stack, tier="starter", token="tok_success")
    bill = await bill_period(stack, temporal_client, c["id"])
    (capture,) = await ledger_captures(stack, bill["id"])
    made = await stack.sim.post(
        "/v1/refunds",
        json={
            "idempotency_key": f"dashboard-{uuid.uuid4().hex[:8]}",
            "charge_reference": capture,
            "amount": "4.00",
            "currency": "USD",
            "reason": "goodwill, from the dashboard",
        },
    )
    assert made.status_code == 200, made.text
    reference = made.json()["gateway_reference"]
    _, report = await reconcile(stack, temporal_client)
    assert report["unresolved"] == []
    (fixed,) = report["fixed"]
    assert (fixed["kind"], fixed["gateway_reference"], fixed["bill_id"]) == (
        "refund",
        reference,
        bill["id"],
    )
    assert fixed["charge_reference"] == capture
    after = (await stack.api.get(f"/v1/bills/{bill['id']}", headers=stack.auth)).json()
    assert (after["amount_refunded"], after["refundable"]) == ("4.00", "6.00")
    # What is left to refund on the capture counts the found refund: 6.00 passes, no more.
    rest = await stack.api.post(
        f"/v1/bills/{bill['id']}/refunds", json={"reason": "the rest"}, headers=stack.auth
    )
    assert rest.status_code == 202, rest.text
    await temporal_client.get_workflow_handle(rest.json()["workflow_id"]).result()
    final = (await stack.api.get(f"/v1/bills/{bill['id']}", headers=stack.auth)).json()
    assert (final["amount_refunded"], final["refundable"]) == ("10.00", "0.00")
    _, rerun = await reconcile(stack, temporal_client)
    assert (rerun["fixed"], rerun["unresolved"]) == ([], [])
