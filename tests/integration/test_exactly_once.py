"""Every payment exactly once under faults (issue 12), on real Postgres, Temporal and the
gateway simulator, provoked from outside as any client could: `tok_lost_answer` (the
charge or refund happens, every answer under its key is lost), `tok_settles_late` (a
transfer settles at twice BANK_TRANSFER_DEADLINE), repeated requests and hard declines.

Every stack ends with the books checked against the gateway and a clean reconciliation
(tests/integration/harness.py). Each test says how the sagas before issue 12 (9cf078d)
failed it.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from temporalio.client import Client

from billing.workflow_ids import charge_id, refund_id

from .harness import LiveStack, live_stack
from .test_sagas_live import PERIOD, bill_period, customer

# Lost answers become look-ups after 3 s, not minutes: the client gives up after 1 s.
FAST_LOOKUPS: dict[str, Any] = {
    "gateway_timeout": "1s",
    "gateway_timeout_s": 1.0,
    "gateway_retry_budget": "3s",
}


async def get_bill(live: LiveStack, bill_id: str) -> dict[str, Any]:
    answer = await live.api.get(f"/v1/bills/{bill_id}", headers=live.auth)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


async def attach(live: LiveStack, cid: str, token: str) -> None:
    attached = await live.api.post(
        f"/v1/customers/{cid}/payment-methods",
        json={"type": "credit_card", "token": token},
        headers=live.auth,
    )
    assert attached.status_code == 201, attached.text


async def pay_now(live: LiveStack, bill_id: str, key: str | None = None) -> Any:
    headers = live.auth | ({"Idempotency-Key": key} if key else {})
    return await live.api.post(f"/v1/bills/{bill_id}/pay", headers=headers)


async def refund(live: LiveStack, bill_id: str, key: str, amount: str | None = None) -> str:
    body: dict[str, Any] = {"reason": "returned"} | ({"amount": amount} if amount else {})
    answer = await live.api.post(
        f"/v1/bills/{bill_id}/refunds",
        json=body,
        headers=live.auth | {"Idempotency-Key": key},
    )
    assert answer.status_code == 202, answer.text
    workflow_id: str = answer.json()["workflow_id"]
    return workflow_id


async def start_cycle(live: LiveStack, cid: str) -> str:
    started = await live.api.post(
        f"/v1/customers/{cid}/billing-cycles", json={"period": PERIOD}, headers=live.auth
    )
    assert started.status_code == 202, started.text
    workflow_id: str = started.json()["workflow_id"]
    return workflow_id


async def until(what: str, check: Any, within_s: float = 15.0) -> Any:
    """Poll `check()` (async) until it answers something truthy; that answer."""
    deadline = time.monotonic() + within_s
    while True:
        found = await check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {within_s} s")
        await asyncio.sleep(0.1)


async def cycle_bill(live: LiveStack, cid: str, attempts: int = 1) -> dict[str, Any]:
    """The customer's cycle bill, once it shows `attempts` attempts (the last may still be
    `pending`: the claim is written before the gateway is called)."""

    async def check() -> dict[str, Any] | None:
        bills = (await live.api.get(f"/v1/customers/{cid}/bills", headers=live.auth)).json()
        cycle = [b for b in bills["bills"] if b["kind"] == "cycle"]
        return cycle[0] if cycle and len(cycle[0]["attempts"]) >= attempts else None

    found: dict[str, Any] = await until(f"{cid}'s bill with {attempts} attempt(s)", check)
    return found


async def step_of(live: LiveStack, workflow_id: str) -> dict[str, Any]:
    answer = await live.api.get(f"/v1/workflows/{workflow_id}", headers=live.auth)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


async def until_step(live: LiveStack, workflow_id: str, step: str) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        # Issue 15: the cycle makes attempt 1 itself and starts the charge saga only after
        # it, so the bill may show that attempt before the saga exists: not there yet.
        answer = await live.api.get(f"/v1/workflows/{workflow_id}", headers=live.auth)
        if answer.status_code == 404:
            return None
        status = await step_of(live, workflow_id)
        return status if status["step"] == step else None

    found: dict[str, Any] = await until(f"{workflow_id} at {step}", check)
    return found


async def until_paid(live: LiveStack, bill_id: str, within_s: float = 15.0) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        bill = await get_bill(live, bill_id)
        return bill if bill["status"] == "paid" else None

    found: dict[str, Any] = await until(f"{bill_id} paid", check, within_s)
    return found


def attempts_of(bill: dict[str, Any]) -> list[tuple[str, str]]:
    return [(a["status"], a["method"]) for a in bill["attempts"]]


async def activities_run(temporal: Client, workflow_id: str) -> list[str]:
    """The activity types a workflow scheduled, in order (its history says what it did)."""
    names = []
    async for event in temporal.get_workflow_handle(workflow_id).fetch_history_events():
        if event.HasField("activity_task_scheduled_event_attributes"):
            names.append(event.activity_task_scheduled_event_attributes.activity_type.name)
    return names


# --- (a) A lost answer: one capture, and nothing charges it again ------------------------


async def test_a_lost_charge_answer_is_one_capture_and_nothing_charges_again(
    settings, db_pool, temporal_client: Client, tmp_path
):
    # Old code: the lost answer was a failed attempt (method "unknown"); every dunning
    # slot charged a new key and lost that answer too: 4 captures at the gateway, none in
    # the ledger, the bill uncollectible and the customer downgraded for not paying.
    async with live_stack(settings, db_pool, temporal_client, tmp_path, **FAST_LOOKUPS) as live:
        c = await customer(live, tier="starter", token="tok_lost_answer")
        bill = await bill_period(live, temporal_client, c["id"])
        assert (bill["status"], bill["amount_paid"]) == ("paid", "10.00")
        assert attempts_of(bill) == [("succeeded", "credit_card")]
        charges = await live.sim_charges(bill_id=bill["id"])
        assert (charges["captures"], len(charges["charges"])) == (1, 1)
        assert charges["charges"][0]["answers_lost"] is True
        assert (
            bill["attempts"][0]["gateway_reference"] == charges["charges"][0]["gateway_reference"]
        )

        # Pay-now on a paid bill is refused; a new card wakes nothing.
        again = await pay_now(live, bill["id"])
        assert again.status_code == 409, again.text
        assert again.json()["error"]["code"] == "invalid_transition"
        await attach(live, c["id"], "tok_success")
        await asyncio.sleep(2.5)  # past a dunning slot (2 s)
        charges = await live.sim_charges(bill_id=bill["id"])
        assert (charges["captures"], len(charges["charges"])) == (1, 1)
        after = await get_bill(live, bill["id"])
        assert attempts_of(after) == [("succeeded", "credit_card")]
        assert (after["status"], after["amount_paid"]) == ("paid", "10.00")


# --- (b) A refund whose answers are lost ---------------------------------------------------


async def test_refunds_whose_answers_are_lost_are_looked_up_and_the_ledger_equals_the_gateway(
    settings, db_pool, temporal_client: Client, tmp_path
):
    # Old code: the refund's ActivityError released its reservation after the gateway had
    # refunded: gateway 6.00 refunded, ledger 0.00 (and the 6.00 refundable again).
    async with live_stack(settings, db_pool, temporal_client, tmp_path, **FAST_LOOKUPS) as live:
        c = await customer(live, tier="starter", token="tok_lost_answer")
        bill = await bill_period(live, temporal_client, c["id"])
        assert bill["status"] == "paid"
        reference = bill["attempts"][0]["gateway_reference"]
        for key, amount in (("part", "6.00"), ("rest", None)):
            workflow_id = await refund(live, bill["id"], key, amount)
            assert workflow_id == refund_id(bill["id"], key)
            result = await asyncio.wait_for(
                temporal_client.get_workflow_handle(workflow_id).result(), timeout=30
            )
            assert result["outcome"] == "refunded"
            done = await activities_run(temporal_client, workflow_id)
            assert "resolve_refund" in done
            assert "release_refund" not in done
            status = await step_of(live, workflow_id)
            assert (status["status"], status["step"]) == ("COMPLETED", "refunded")
        after = await get_bill(live, bill["id"])
        gateway = (
            await live.sim.get("/_sim/refunds", params={"charge_reference": reference})
        ).json()
        assert len(gateway["refunds"]) == 2
        assert (after["amount_refunded"], after["refundable"]) == ("10.00", "0.00")
        assert after["amount_refunded"] == gateway["refunded_total"]
        # No reservation left behind: both refunds succeeded, none released.
        rows = await db_pool.fetch(
            "SELECT id, status FROM refunds WHERE bill_id = $1 ORDER BY id", bill["id"]
        )
        assert [r["status"] for r in rows] == ["succeeded", "succeeded"]


# --- (c) A bank transfer that settles after its deadline ------------------------------------


async def test_a_transfer_settling_after_its_deadline_is_one_transfer_and_pays_the_bill(
    settings, db_pool, temporal_client: Client, tmp_path
):
    # Old code: at the deadline (2 s) the transfer counted as failed; each dunning slot
    # started another transfer (each settling late, each webhook dropped): 4 transfers
    # settled, the ledger 0 captured, the bill uncollectible, the customer moved to free.
    async with live_stack(
        settings, db_pool, temporal_client, tmp_path, bank_transfer_deadline="2s"
    ) as live:
        c = await customer(live, tier="starter", token="tok_settles_late", method="bank_transfer")
        began = time.monotonic()
        bill = await bill_period(live, temporal_client, c["id"])
        took = time.monotonic() - began
        assert (bill["status"], bill["amount_paid"]) == ("paid", "10.00")
        assert took >= 3.5  # settled at twice the deadline (4 s), not before
        assert attempts_of(bill) == [("succeeded", "bank_transfer")]
        status = await step_of(live, charge_id(bill["id"]))
        assert (status["status"], status["step"]) == ("COMPLETED", "paid")
        # Past the deadline the transfer was looked up, not failed; one charge call only.
        done = await activities_run(temporal_client, charge_id(bill["id"]))
        assert done.count("charge") == 1
        assert "get_charge" in done
        await asyncio.sleep(2.5)  # past a dunning slot: nothing starts another transfer
        charges = await live.sim_charges(bill_id=bill["id"])
        assert (charges["captures"], len(charges["charges"])) == (1, 1)
        read = (await live.api.get(f"/v1/customers/{c['id']}", headers=live.auth)).json()
        assert read["tier"] == "starter"
        bills = (await live.api.get(f"/v1/customers/{c['id']}/bills", headers=live.auth)).json()
        assert [(b["kind"], b["status"]) for b in bills["bills"]] == [("cycle", "paid")]


# --- (d) Pay-now and new cards: each request its own key, the same request one try ---------


async def test_a_new_card_during_dunning_is_tried_at_once_and_a_repeated_pay_now_is_one_try(
    settings, db_pool, temporal_client: Client, tmp_path
):
    # Old code: `retry_now` carried no request id, so the same pay-now sent twice was two
    # more tries (two more declines) instead of one.
    async with live_stack(
        settings, db_pool, temporal_client, tmp_path, dunning_schedule="1h"
    ) as live:
        c = await customer(live, tier="starter", token="tok_insufficient_funds")
        cycle = await start_cycle(live, c["id"])
        bill = await cycle_bill(live, c["id"])
        dunning = charge_id(bill["id"])
        await until_step(live, dunning, "dunning")
        assert attempts_of(await get_bill(live, bill["id"])) == [("failed", "credit_card")]

        first = await pay_now(live, bill["id"], key="pay-1")
        assert first.json() == {"workflow_id": dunning, "status": "signalled"}
        await cycle_bill(live, c["id"], attempts=2)
        await until_step(live, dunning, "dunning")
        second = await pay_now(live, bill["id"], key="pay-1")
        assert second.json()["workflow_id"] == dunning
        await asyncio.sleep(1.0)
        assert len((await live.sim_charges(bill_id=bill["id"]))["charges"]) == 2

        await attach(live, c["id"], "tok_success")
        paid = await until_paid(live, bill["id"])  # at once: the next slot is an hour away
        assert attempts_of(paid) == [
            ("failed", "credit_card"),
            ("failed", "credit_card"),
            ("succeeded", "credit_card"),
        ]
        charges = await live.sim_charges(bill_id=bill["id"])
        assert (charges["captures"], len(charges["charges"])) == (1, 3)
        result = await asyncio.wait_for(
            temporal_client.get_workflow_handle(cycle).result(), timeout=15
        )
        assert result["outcome"] == "paid"


async def test_pay_now_after_a_new_card_pays_a_written_off_bill_under_a_new_key(
    settings, db_pool, temporal_client: Client, tmp_path
):
    # Old code: every pay-now on a bill ran as `charge-{bill}-pay-now` and sent the key
    # `…-pay-now-attempt-1`, so the second pay-now got the first one's decline back from
    # the gateway, new card or not: the bill stayed uncollectible.
    async with live_stack(
        settings, db_pool, temporal_client, tmp_path, dunning_schedule=""
    ) as live:
        c = await customer(live, tier="starter", token="tok_insufficient_funds")
        bill = await bill_period(live, temporal_client, c["id"])
        assert bill["status"] == "uncollectible"

        first = await pay_now(live, bill["id"], key="k1")
        assert first.status_code == 202, first.text
        first_id = first.json()["workflow_id"]
        assert first_id == f"{charge_id(bill['id'])}-pay-k1"
        result = await asyncio.wait_for(
            temporal_client.get_workflow_handle(first_id).result(), timeout=20
        )
        assert result["outcome"] == "failed"
        # The same key again is the same request: its first answer, no second try.
        repeat = await pay_now(live, bill["id"], key="k1")
        assert (repeat.status_code, repeat.json()["workflow_id"]) == (202, first_id)
        assert len((await live.sim_charges(bill_id=bill["id"]))["charges"]) == 2

        await attach(live, c["id"], "tok_success")
        second = await pay_now(live, bill["id"], key="k2")
        assert second.status_code == 202, second.text
        second_id = second.json()["workflow_id"]
        assert second_id == f"{charge_id(bill['id'])}-pay-k2"
        result = await asyncio.wait_for(
            temporal_client.get_workflow_handle(second_id).result(), timeout=20
        )
        assert result["outcome"] == "paid"
        paid = await get_bill(live, bill["id"])
        assert (paid["status"], paid["amount_paid"]) == ("paid", "10.00")
        charges = await live.sim_charges(bill_id=bill["id"])
        assert (charges["captures"], len(charges["charges"])) == (1, 3)
        keys = [ch["idempotency_key"] for ch in charges["charges"]]
        assert len(set(keys)) == 3
        # Still the same request after the state moved on: its first workflow, nothing new.
        late = await pay_now(live, bill["id"], key="k1")
        assert (late.status_code, late.json()["workflow_id"]) == (202, first_id)
        assert len((await live.sim_charges(bill_id=bill["id"]))["charges"]) == 3

        # Dunning moved the customer to free for this bill; paid late, the tier comes back.
        async def restored() -> bool:
            read = await live.api.get(f"/v1/customers/{c['id']}", headers=live.auth)
            return bool(read.json()["tier"] == "starter")

        await until(f"{c['id']} back on starter", restored)


# --- (e) Refund ids from requests ----------------------------------------------------------


async def test_refund_keys_are_the_requests_own_across_bills_and_once_per_key(
    settings, db_pool, temporal_client: Client, tmp_path
):
    # Old code: the refund id was cut from the workflow id's last dash, so `order-1` on one
    # bill and `return-1` on another were both `rf_1`: the second refund reused the first's
    # row (its bill, amount and capture) and its own bill was never refunded.
    async with live_stack(settings, db_pool, temporal_client, tmp_path) as live:
        bills = []
        for _ in range(2):
            c = await customer(live, tier="starter", token="tok_success")
            bills.append(await bill_period(live, temporal_client, c["id"]))
        ids = [
            await refund(live, bills[0]["id"], "order-1", "4.00"),
            await refund(live, bills[1]["id"], "return-1", "3.00"),
        ]
        for workflow_id in ids:
            result = await asyncio.wait_for(
                temporal_client.get_workflow_handle(workflow_id).result(), timeout=20
            )
            assert result["outcome"] == "refunded"
        # The same key on the same bill is the same refund: its workflow, nothing new.
        assert await refund(live, bills[0]["id"], "order-1", "4.00") == ids[0]
        await asyncio.sleep(0.5)
        for bill, amount in zip(bills, ["4.00", "3.00"], strict=True):
            after = await get_bill(live, bill["id"])
            assert after["amount_refunded"] == amount
            reference = bill["attempts"][0]["gateway_reference"]
            gateway = (
                await live.sim.get("/_sim/refunds", params={"charge_reference": reference})
            ).json()
            assert (len(gateway["refunds"]), gateway["refunded_total"]) == (1, amount)
        rows = await db_pool.fetch(
            "SELECT id, bill_id FROM refunds WHERE bill_id = ANY($1::text[]) ORDER BY id",
            [b["id"] for b in bills],
        )
        assert sorted((r["bill_id"], r["id"]) for r in rows) == sorted(
            [
                (bills[0]["id"], f"rf_{bills[0]['id']}_order-1"),
                (bills[1]["id"], f"rf_{bills[1]['id']}_return-1"),
            ]
        )


# --- (f) A hard decline with no other method ----------------------------------------------


async def test_a_hard_decline_with_no_other_method_waits_for_one_without_attempts(
    settings, db_pool, temporal_client: Client, tmp_path
):
    # Old code: each dunning slot recorded a failed "attempt" with method "none" that never
    # reached the gateway, and the bill went uncollectible with three of them listed.
    async with live_stack(
        settings, db_pool, temporal_client, tmp_path, dunning_schedule="2s,2s,2s"
    ) as live:
        c = await customer(live, tier="starter", token="tok_card_declined")
        await start_cycle(live, c["id"])
        bill = await cycle_bill(live, c["id"])
        dunning = charge_id(bill["id"])
        status = await until_step(live, dunning, "awaiting_payment_method")
        assert status["status"] == "RUNNING"
        assert status["details"]["bill_id"] == bill["id"]
        waiting = await get_bill(live, bill["id"])
        assert [(a["status"], a["method"], a["decline_code"]) for a in waiting["attempts"]] == [
            ("failed", "credit_card", "card_declined")
        ]
        assert len((await live.sim_charges(bill_id=bill["id"]))["charges"]) == 1

        await attach(live, c["id"], "tok_success")
        paid = await until_paid(live, bill["id"], within_s=5)
        assert attempts_of(paid) == [("failed", "credit_card"), ("succeeded", "credit_card")]
        assert all(a["method"] != "none" for a in paid["attempts"])
        charges = await live.sim_charges(bill_id=bill["id"])
        assert (charges["captures"], len(charges["charges"])) == (1, 2)
        read = (await live.api.get(f"/v1/customers/{c['id']}", headers=live.auth)).json()
        assert read["tier"] == "starter"


async def test_the_same_pay_now_key_after_the_bill_is_paid_answers_its_first_answer(
    settings, db_pool, temporal_client: Client, tmp_path
):
    # Issue 12: the same Idempotency-Key twice "returns the first answer and starts
    # nothing". A pay-now that signalled the running dunning saga was answered
    # {charge-{bill}, signalled}; the client that lost that answer and retries after the
    # bill was paid must get it again, as a pay-now that started its own saga does
    # (test_pay_now_after_a_new_card_pays_a_written_off_bill_under_a_new_key), not a 409.
    async with live_stack(
        settings, db_pool, temporal_client, tmp_path, dunning_schedule="1h"
    ) as live:
        c = await customer(live, tier="starter", token="tok_insufficient_funds")
        await start_cycle(live, c["id"])
        bill = await cycle_bill(live, c["id"])
        dunning = charge_id(bill["id"])
        await until_step(live, dunning, "dunning")
        sent = await pay_now(live, bill["id"], key="pay-k")
        assert sent.json() == {"workflow_id": dunning, "status": "signalled"}
        await cycle_bill(live, c["id"], attempts=2)  # declined again
        await attach(live, c["id"], "tok_success")
        await until_paid(live, bill["id"])
        again = await pay_now(live, bill["id"], key="pay-k")
        assert (again.status_code, again.json().get("workflow_id")) == (202, dunning), again.text
        assert len((await live.sim_charges(bill_id=bill["id"]))["charges"]) == 3


async def test_an_upgrade_whose_charge_answer_is_lost_stays_upgraded_and_paid(
    settings, db_pool, temporal_client: Client, tmp_path
):
    # Old code: the lost answer failed the upgrade's one-try charge; the saga voided the
    # bill and reverted the tier although the gateway had captured the proration.
    async with live_stack(settings, db_pool, temporal_client, tmp_path, **FAST_LOOKUPS) as live:
        c = await customer(live, tier="free", token="tok_lost_answer")
        up = await live.api.post(
            f"/v1/customers/{c['id']}/upgrade", json={"tier": "starter"}, headers=live.auth
        )
        assert up.status_code == 202, up.text
        result = await asyncio.wait_for(
            temporal_client.get_workflow_handle(up.json()["workflow_id"]).result(), timeout=30
        )
        assert result["outcome"] == "upgraded"
        read = (await live.api.get(f"/v1/customers/{c['id']}", headers=live.auth)).json()
        assert read["tier"] == "starter"
        bills = (await live.api.get(f"/v1/customers/{c['id']}/bills", headers=live.auth)).json()
        (bill,) = [b for b in bills["bills"] if b["kind"] == "upgrade"]
        assert bill["status"] == "paid"
        assert attempts_of(bill) == [("succeeded", "credit_card")]
        charges = await live.sim_charges(bill_id=bill["id"])
        assert (charges["captures"], len(charges["charges"])) == (1, 1)
        assert charges["charges"][0]["answers_lost"] is True
