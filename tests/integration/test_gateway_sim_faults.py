"""The simulator under a real gateway's faults: answers lost, late settlements, outside captures."""

from __future__ import annotations

import asyncio
import base64
import logging
import sqlite3
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from billing import errors
from billing.payments import ChargeStatus, PaymentMethodType
from gateway_sim import state
from gateway_sim.store import Store
from payments.simulator import SimulatorGateway

from . import test_gateway_sim as base
from .test_gateway_sim import Sim, StartSim, charge, refund

start_sim = base.start_sim  # the simulator fixture, served by uvicorn as in test_gateway_sim
LOST = "tok_lost_answer"


async def _impatient(sim: Sim, timeout_s: float = 0.5) -> SimulatorGateway:
    return SimulatorGateway(sim.url, timeout_s=timeout_s)


async def test_a_lost_answer_charge_takes_effect_and_no_retry_is_answered(
    start_sim: StartSim, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="gateway_sim")
    sim = await start_sim()
    impatient = await _impatient(sim)
    request = charge("k-lost", LOST)
    try:
        for _ in range(2):  # the call, and a retry with its key
            began = time.monotonic()
            with pytest.raises(errors.DependencyUnavailable, match="gateway timed out on charge"):
                await impatient.charge(request)
            assert time.monotonic() - began >= 0.5
    finally:
        await impatient.aclose()
    found = await sim.gateway.find_charge("k-lost")
    assert found is not None
    assert found.status is ChargeStatus.SUCCEEDED
    assert found.authorization_code is not None
    assert found.amount == Decimal("10.00")
    # Each held request ends once its client hangs up: nothing lingers on the server.
    for _ in range(40):
        if caplog.text.count("the client gave up waiting") == 2:
            break
        await asyncio.sleep(0.05)
    assert caplog.text.count("the client gave up waiting") == 2
    stored = await sim.sim_charges(idempotency_key="k-lost")
    assert (len(stored["charges"]), stored["captures"]) == (1, 1)
    assert stored["charges"][0]["answers_lost"] is True
    assert stored["charges"][0]["gateway_reference"] == found.gateway_reference


async def test_lost_answers_keep_no_state_across_keys(start_sim: StartSim) -> None:
    sim = await start_sim()
    impatient = await _impatient(sim, 0.3)
    try:
        for key in ("k-lost-a", "k-lost-b"):
            with pytest.raises(errors.DependencyUnavailable, match="timed out"):
                await impatient.charge(charge(key, LOST))
    finally:
        await impatient.aclose()
    # Another token on the same gateway is answered as usual.
    assert (await sim.gateway.charge(charge("k-fine", "tok_success"))).status == "succeeded"
    assert (await sim.sim_charges())["captures"] == 3


async def test_a_refund_of_a_lost_answer_charge_takes_effect_unanswered(
    start_sim: StartSim,
) -> None:
    sim = await start_sim()
    impatient = await _impatient(sim)
    try:
        with pytest.raises(errors.DependencyUnavailable, match="timed out"):
            await impatient.charge(charge("k-lost-rf", LOST))
        found = await sim.gateway.find_charge("k-lost-rf")
        assert found is not None
        request = refund("r-lost", found.gateway_reference, "4.00")
        for _ in range(2):
            with pytest.raises(errors.DependencyUnavailable, match="gateway timed out on refund"):
                await impatient.refund(request)
    finally:
        await impatient.aclose()
    refunded = await sim.gateway.find_refund("r-lost")
    assert refunded is not None
    assert (refunded.status, refunded.amount) == ("succeeded", Decimal("4.00"))
    listed = (
        await sim.http.get(
            f"{sim.url}/_sim/refunds", params={"charge_reference": found.gateway_reference}
        )
    ).json()
    assert [r["amount"] for r in listed["refunds"]] == ["4.00"]
    # A refund the gateway refuses took no effect: that answer is not lost.
    with pytest.raises(errors.RefundRefused, match="exceeds"):
        await sim.gateway.refund(refund("r-lost-2", found.gateway_reference, "6.01"))


async def test_a_lost_answer_is_held_no_longer_than_the_cap(
    start_sim: StartSim, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(state, "LOST_ANSWER_CAP_S", 0.4)
    monkeypatch.setattr(state, "LOST_ANSWER_POLL_S", 0.1)
    sim = await start_sim()
    with pytest.raises(errors.DependencyUnavailable, match="gateway_timeout"):
        await sim.gateway.charge(charge("k-capped", LOST))
    assert (await sim.sim_charges(idempotency_key="k-capped"))["captures"] == 1


async def test_a_late_transfer_settles_at_twice_the_deadline(start_sim: StartSim) -> None:
    sim = await start_sim(bank_transfer_deadline="1s", bank_transfer_settlement_delay="100ms")
    began = time.monotonic()
    request = charge("k-late", "tok_settles_late", method=PaymentMethodType.BANK_TRANSFER)
    outcome = await sim.gateway.charge(request)
    assert outcome.status is ChargeStatus.PENDING
    await asyncio.sleep(1.5 - (time.monotonic() - began))
    # Past the deadline (and long past the usual settlement delay): still pending, no webhook.
    still = await sim.gateway.find_charge("k-late")
    assert still is not None
    assert still.status is ChargeStatus.PENDING
    assert sim.receiver.received == []
    await sim.receiver.wait_for(1, within=3.0)
    assert time.monotonic() - began >= 2.0 - 0.05
    event = base._verified_event(*sim.receiver.received[0])
    assert (event.type, event.data.gateway_reference) == (
        "charge.settled",
        outcome.gateway_reference,
    )
    settled = await sim.gateway.find_charge("k-late")
    assert settled is not None
    assert settled.status is ChargeStatus.SUCCEEDED


async def test_settles_late_on_a_card_just_succeeds(start_sim: StartSim) -> None:
    sim = await start_sim()
    outcome = await sim.gateway.charge(charge("k-late-card", "tok_settles_late"))
    assert outcome.status is ChargeStatus.SUCCEEDED


async def test_a_dashboard_capture_carries_its_bill_and_is_listed(start_sim: StartSim) -> None:
    sim = await start_sim()
    since = datetime.now(UTC)
    body = {
        "bill_id": "bill-dash",
        "amount": "7.50",
        "currency": "USD",
        "token": "tok_success",
        "customer_id": "cus_dash",
    }
    made = await sim.http.post(f"{sim.url}/_sim/charges", json=body)
    assert made.status_code == 200, made.text
    answer = made.json()
    assert answer["status"] == "succeeded"
    assert answer["idempotency_key"].startswith("dashboard-")
    page = await sim.gateway.list_transactions(since)
    assert [t.gateway_reference for t in page.transactions] == [answer["gateway_reference"]]
    listed = page.transactions[0]
    assert (listed.kind, listed.status, listed.amount) == ("charge", "succeeded", Decimal("7.50"))
    assert listed.metadata == {
        "bill_id": "bill-dash",
        "source": "dashboard",
        "customer_id": "cus_dash",
    }
    assert listed.method_type == "credit_card"
    assert await sim.gateway.find_charge(answer["idempotency_key"]) is not None
    assert (await sim.sim_charges(bill_id="bill-dash"))["captures"] == 1
    declined = await sim.http.post(
        f"{sim.url}/_sim/charges", json=body | {"token": "tok_card_declined"}
    )
    assert declined.json()["status"] == "failed"


async def test_sim_controls_are_off_in_production(start_sim: StartSim) -> None:
    sim = await start_sim(
        environment="production",
        billing_api_key="sk_live_test_only",
        payload_codec_key=base64.b64encode(b"k" * 32).decode(),
    )
    body = {"bill_id": "b", "amount": "1.00", "currency": "USD", "token": "tok_success"}
    refused = await sim.http.post(f"{sim.url}/_sim/charges", json=body)
    assert refused.status_code == 403
    assert (await sim.sim_charges())["charges"] == []


def test_an_older_store_file_gains_the_answers_lost_column(tmp_path: Path) -> None:
    path = str(tmp_path / "old.sqlite3")
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE charges (reference TEXT PRIMARY KEY, idempotency_key TEXT NOT NULL"
            " UNIQUE, amount TEXT NOT NULL, currency TEXT NOT NULL, method_type TEXT NOT NULL,"
            " description TEXT NOT NULL, metadata TEXT NOT NULL, bill_id TEXT, status TEXT"
            " NOT NULL, authorization_code TEXT, decline_code TEXT, decline_kind TEXT,"
            " message TEXT NOT NULL, planned TEXT, settle_at REAL, settled_at INTEGER,"
            " event_id TEXT, webhook_state TEXT NOT NULL DEFAULT 'none',"
            " webhook_attempts INTEGER NOT NULL DEFAULT 0, created_at REAL NOT NULL)"
        )
        db.execute(
            "INSERT INTO charges VALUES ('ch_old', 'k-old', '1.00', 'USD', 'credit_card', '',"
            " '{}', NULL, 'succeeded', 'AB12CD', NULL, NULL, 'Approved', NULL, NULL, NULL,"
            " NULL, 'none', 0, 1.0)"
        )
    db.close()
    store = Store(path)
    try:
        old = store.charge_by_key("k-old")
        assert old is not None
        assert old.answers_lost is False
    finally:
        store.close()
