"""Records the replay histories afresh: `make replay-record`. Not part of `make test`.

Each scenario drives one path through the real stack (dev server, Postgres, Redis,
the gateway simulator, real activities) in a database of its own, then writes the
histories of the workflows it ran to `histories/<name>.json`. Record when a new
path appears; never to silence a replay that fails (see README, "Replay tests").
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from temporalio.client import Client, WorkflowFailureError

from billing.periods import period_bounds, period_of, previous_period
from store.db import create_pool
from store.migrate import migrate_url
from tests.integration.harness import LiveStack, live_stack
from workflows.billing_run_messages import BillingRunInput
from workflows.refund_messages import RefundInput

HISTORIES = Path(__file__).parent / "histories"
# Lost answers become look-ups after 3 s, not minutes.
FAST_LOOKUPS: dict[str, Any] = {
    "gateway_timeout": "1s",
    "gateway_timeout_s": 1.0,
    "gateway_retry_budget": "3s",
}
PERIOD = previous_period(period_of(datetime.now(UTC)))
START = period_bounds(PERIOD)[0]


@pytest.fixture
async def fresh_pool(database_url: str) -> AsyncIterator[tuple[str, asyncpg.Pool]]:
    """A database of its own: a billing run bills every customer it can see."""
    name = f"replay_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(database_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    url = database_url.rsplit("/", 1)[0] + f"/{name}"
    await migrate_url(url)
    pool = await create_pool(url)
    try:
        yield url, pool
    finally:
        await pool.close()


@pytest.fixture
async def stack(settings, fresh_pool, temporal_client, tmp_path) -> AsyncIterator[LiveStack]:
    url, pool = fresh_pool
    base = settings.model_copy(update={"database_url": url})
    async with live_stack(
        base, pool, temporal_client, tmp_path, dunning_schedule="1s,1s,1s",
        bank_transfer_deadline="3s", billing_run_page_size=2, **FAST_LOOKUPS,
    ) as live:  # fmt: skip
        yield live


async def save(temporal: Client, name: str, *workflow_ids: str) -> None:
    """Write the workflows' histories, closed, as one JSON file per scenario."""
    records = []
    for workflow_id in workflow_ids:
        handle = temporal.get_workflow_handle(workflow_id)
        await asyncio.wait_for(_closed(handle), timeout=60)
        history = await handle.fetch_history()
        records.append({"workflow_id": workflow_id, "history": json.loads(history.to_json())})
    (HISTORIES / f"{name}.json").write_text(json.dumps(records, indent=1) + "\n")


async def _closed(handle: Any) -> None:
    try:
        await handle.result()
    except WorkflowFailureError:
        pass


async def customer(live: LiveStack, tier: str, token: str, method: str = "credit_card") -> str:
    body = {"name": "Replay", "email": f"{uuid.uuid4().hex[:8]}@example.com", "tier": tier,
            "started_at": START.isoformat()}  # fmt: skip
    cid: str = (await live.api.post("/v1/customers", json=body, headers=live.auth)).json()["id"]
    await live.api.post(
        f"/v1/customers/{cid}/payment-methods", json={"type": method, "token": token},
        headers=live.auth,
    )  # fmt: skip
    return cid


async def bill(live: LiveStack, cid: str) -> tuple[str, str]:
    """Start the period's cycle; returns its workflow id and its bill's charge workflow id
    (which exists only when collecting had to wait: a bill paid at once is the cycle alone)."""
    started = await live.api.post(
        f"/v1/customers/{cid}/billing-cycles", json={"period": PERIOD}, headers=live.auth
    )
    workflow_id = started.json()["workflow_id"]
    result = await live_result(live, workflow_id)
    return workflow_id, f"charge-{result['bill_id']}"


async def live_result(live: LiveStack, workflow_id: str) -> dict[str, Any]:
    for _ in range(600):
        status = (await live.api.get(f"/v1/workflows/{workflow_id}", headers=live.auth)).json()
        if status["status"] != "RUNNING" and status["details"].get("bill_id"):
            return {"bill_id": status["details"]["bill_id"], "status": status["status"]}
        await asyncio.sleep(0.1)
    raise AssertionError(f"{workflow_id} did not finish")


async def test_record_paid_at_once(stack: LiveStack, temporal_client: Client) -> None:
    cid = await customer(stack, "starter", "tok_success")
    cycle, _ = await bill(stack, cid)
    await save(temporal_client, "billing_cycle_paid_at_once", cycle)  # one execution


async def test_record_uncollectible(stack: LiveStack, temporal_client: Client) -> None:
    cid = await customer(stack, "starter", "tok_insufficient_funds")
    cycle, charge = await bill(stack, cid)
    await save(temporal_client, "charge_uncollectible_after_dunning", cycle, charge)


async def test_record_paid_after_dunning(stack: LiveStack, temporal_client: Client) -> None:
    cid = await customer(stack, "starter", "tok_insufficient_funds")
    started = await stack.api.post(
        f"/v1/customers/{cid}/billing-cycles", json={"period": PERIOD}, headers=stack.auth
    )
    cycle = started.json()["workflow_id"]
    await asyncio.sleep(0.5)  # the first attempt fails; a good card arrives behind the API's back
    await stack.pool.execute(
        "INSERT INTO payment_methods (id, customer_id, type, token) VALUES ($1, $2, 'credit_card',"
        " 'tok_success')", f"pm_{uuid.uuid4().hex[:8]}", cid,
    )  # fmt: skip
    result = await live_result(stack, cycle)
    await save(temporal_client, "charge_paid_after_dunning", cycle, f"charge-{result['bill_id']}")


async def test_record_pay_now(stack: LiveStack, temporal_client: Client) -> None:
    cid = await customer(stack, "starter", "tok_insufficient_funds")
    started = await stack.api.post(
        f"/v1/customers/{cid}/billing-cycles", json={"period": PERIOD}, headers=stack.auth
    )
    cycle = started.json()["workflow_id"]
    await asyncio.sleep(0.5)
    # A new method through the API wakes the dunning saga at once (retry_now signal).
    await stack.api.post(
        f"/v1/customers/{cid}/payment-methods", json={"type": "paypal", "token": "tok_success"},
        headers=stack.auth,
    )  # fmt: skip
    result = await live_result(stack, cycle)
    await save(
        temporal_client, "charge_paid_now_after_new_method", cycle, f"charge-{result['bill_id']}"
    )


async def test_record_bank_transfer_settled(stack: LiveStack, temporal_client: Client) -> None:
    cid = await customer(stack, "enterprise", "tok_success", method="bank_transfer")
    cycle, charge = await bill(stack, cid)
    await save(temporal_client, "bank_transfer_settled", cycle, charge)


async def test_record_bank_transfer_past_deadline(
    settings, fresh_pool, temporal_client, tmp_path
) -> None:
    url, pool = fresh_pool
    base = settings.model_copy(update={"database_url": url})
    async with live_stack(
        base, pool, temporal_client, tmp_path, dunning_schedule="",
        bank_transfer_deadline="1s", bank_transfer_settlement_delay="5s",
    ) as live:  # fmt: skip
        cid = await customer(live, "starter", "tok_success", method="bank_transfer")
        cycle, charge = await bill(live, cid)
        await save(temporal_client, "bank_transfer_past_deadline", cycle, charge)


async def test_record_upgrades(stack: LiveStack, temporal_client: Client) -> None:
    good = await customer(stack, "free", "tok_success")
    bad = await customer(stack, "free", "tok_card_declined")
    ids = []
    for cid in (good, bad):
        started = await stack.api.post(
            f"/v1/customers/{cid}/upgrade", json={"tier": "professional"}, headers=stack.auth
        )
        ids.append(started.json()["workflow_id"])
    for workflow_id in ids:
        await _closed(temporal_client.get_workflow_handle(workflow_id))
    for name, workflow_id in zip(("upgrade_paid", "upgrade_compensated"), ids, strict=True):
        bill_id = await stack.pool.fetchval(
            "SELECT id FROM bills WHERE workflow_id = $1", workflow_id
        )
        await save(temporal_client, name, workflow_id, f"charge-{bill_id}")


async def test_record_refunds(stack: LiveStack, temporal_client: Client) -> None:
    cid = await customer(stack, "professional", "tok_success")
    _, charge = await bill(stack, cid)
    bill_id = charge.removeprefix("charge-")
    ids = {}
    for name, amount in (("refund_partial", Decimal("20.00")), ("refund_refused", Decimal("40.00")),
                         ("refund_full", None)):  # fmt: skip
        request = uuid.uuid4().hex[:8]
        handle = await temporal_client.start_workflow(
            "RefundWorkflow",
            RefundInput(bill_id=bill_id, amount=amount, reason=name, request_id=request),
            id=f"refund-{bill_id}-{request}",
            task_queue=stack.settings.task_queue,
        )
        await _closed(handle)
        ids[name] = handle.id
    for name, workflow_id in ids.items():
        await save(temporal_client, name, workflow_id)


async def test_record_billing_run(stack: LiveStack, temporal_client: Client) -> None:
    # One card declines: its cycle hands the bill to dunning and gives its slot back
    # (the run's `cycle_waiting` signal, issue 15) while the others are paid at once.
    for tier, token in (("starter", "tok_insufficient_funds"), ("professional", "tok_success"),
                        ("enterprise", "tok_success")):  # fmt: skip
        await customer(stack, tier, token)
    run_id = f"billing-run-{PERIOD}-{uuid.uuid4().hex[:6]}"
    await temporal_client.execute_workflow(
        "BillingRunWorkflow", BillingRunInput(period=PERIOD), id=run_id,
        task_queue=stack.settings.task_queue,
    )  # fmt: skip
    # Page size 2 and three customers: the run continued as new once; keep every run.
    runs = []
    async for event in temporal_client.list_workflows(f"WorkflowId = '{run_id}'"):
        runs.append(event.run_id)
    records = []
    for run in reversed(runs):
        history = await temporal_client.get_workflow_handle(run_id, run_id=run).fetch_history()
        records.append({"workflow_id": run_id, "history": json.loads(history.to_json())})
    assert len(records) >= 2, "the billing run should have continued as new"
    assert "cycle_waiting" in json.dumps(records), "the declined cycle gave its slot back"
    (HISTORIES / "billing_run_continue_as_new.json").write_text(
        json.dumps(records, indent=1) + "\n"
    )


# --- Paths of issue 12 ------------------------------------------------------------------

GOOD_CARD = {"type": "credit_card", "token": "tok_success"}


async def test_record_lost_answers(stack: LiveStack, temporal_client: Client) -> None:
    cid = await customer(stack, "starter", "tok_lost_answer")
    cycle, charge = await bill(stack, cid)
    await save(temporal_client, "charge_lost_answer_resolved", cycle, charge)
    bill_id = charge.removeprefix("charge-")
    handle = await temporal_client.start_workflow(
        "RefundWorkflow",
        RefundInput(bill_id=bill_id, amount=None, reason="lost answer", request_id="lost"),
        id=f"refund-{bill_id}-lost",
        task_queue=stack.settings.task_queue,
    )
    await save(temporal_client, "refund_lost_answer_resolved", handle.id)


async def test_record_settled_late(settings, fresh_pool, temporal_client, tmp_path) -> None:
    url, pool = fresh_pool
    base = settings.model_copy(update={"database_url": url})
    async with live_stack(
        base, pool, temporal_client, tmp_path, dunning_schedule="", bank_transfer_deadline="1s",
    ) as live:  # fmt: skip
        cid = await customer(live, "starter", "tok_settles_late", method="bank_transfer")
        cycle, charge = await bill(live, cid)
        await save(temporal_client, "bank_transfer_settled_late", cycle, charge)


async def test_record_awaiting_method(stack: LiveStack, temporal_client: Client) -> None:
    cid = await customer(stack, "starter", "tok_card_declined")
    started = await stack.api.post(
        f"/v1/customers/{cid}/billing-cycles", json={"period": PERIOD}, headers=stack.auth
    )
    cycle = started.json()["workflow_id"]
    await asyncio.sleep(1.5)  # hard-declined; no other method: the saga waits for one
    await stack.api.post(f"/v1/customers/{cid}/payment-methods", json=GOOD_CARD, headers=stack.auth)
    result = await live_result(stack, cycle)
    await save(
        temporal_client, "charge_awaiting_payment_method", cycle, f"charge-{result['bill_id']}"
    )


async def test_record_turns(stack: LiveStack, temporal_client: Client) -> None:
    cid = await customer(stack, "starter", "tok_success")
    ids = []
    for tier in ("professional", "enterprise"):
        started = await stack.api.post(
            f"/v1/customers/{cid}/upgrade", json={"tier": tier}, headers=stack.auth
        )
        ids.append(started.json()["workflow_id"])
    for workflow_id in ids:
        await _closed(temporal_client.get_workflow_handle(workflow_id))
    bills = await stack.pool.fetch("SELECT id FROM bills WHERE customer_id = $1", cid)
    charges = [f"charge-{b['id']}" for b in bills]
    await save(temporal_client, "tier_changes_take_turns", *ids, *charges, f"subscription-{cid}")


async def test_record_dunning_downgrade_then_restore(
    stack: LiveStack, temporal_client: Client
) -> None:
    cid = await customer(stack, "starter", "tok_insufficient_funds")
    cycle, charge = await bill(stack, cid)
    bill_id = charge.removeprefix("charge-")
    await _closed(temporal_client.get_workflow_handle(charge))
    downgrade = f"upgrade-{cid}-free-dunning-{bill_id}"
    await _closed(temporal_client.get_workflow_handle(downgrade))
    await stack.api.post(f"/v1/customers/{cid}/payment-methods", json=GOOD_CARD, headers=stack.auth)
    paid = await stack.api.post(
        f"/v1/bills/{bill_id}/pay", headers={**stack.auth, "Idempotency-Key": "late"}
    )
    pay_now = paid.json()["workflow_id"]
    await _closed(temporal_client.get_workflow_handle(pay_now))
    restore = f"upgrade-{cid}-starter-restore-{bill_id}"
    await save(
        temporal_client, "dunning_downgrade_then_restored", cycle, charge, downgrade, pay_now,
        restore,
    )  # fmt: skip


async def test_record_reconciliation(stack: LiveStack, temporal_client: Client) -> None:
    cid = await customer(stack, "starter", "tok_success")
    _, charge = await bill(stack, cid)
    bill_id = charge.removeprefix("charge-")
    stack.allow_captures(bill_id, 2)
    made = await stack.sim.post(
        "/_sim/charges",
        json={"bill_id": bill_id, "amount": "10.00", "currency": "USD", "token": "tok_success"},
    )
    reference = made.json()["gateway_reference"]
    started = await stack.api.post("/v1/reconciliations", json={}, headers=stack.auth)
    run = started.json()["workflow_id"]
    await _closed(temporal_client.get_workflow_handle(run))
    await save(
        temporal_client, "payment_found_by_reconciliation", run, f"payment-{reference}",
        f"refund-{bill_id}-overpayment-{reference}",
    )  # fmt: skip
