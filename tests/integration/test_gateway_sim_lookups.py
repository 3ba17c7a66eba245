"""Look-ups by idempotency key and the transaction list reconciliation pages through."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from billing import errors
from billing.payments import ChargeStatus, GatewayTransaction, PaymentMethodType

from . import test_gateway_sim as base
from .test_gateway_sim import Sim, StartSim, charge, refund

start_sim = base.start_sim  # the simulator fixture, served by uvicorn as in test_gateway_sim


async def test_an_unknown_key_is_a_definite_none(start_sim: StartSim) -> None:
    sim = await start_sim()
    assert await sim.gateway.find_charge("k-never") is None
    assert await sim.gateway.find_refund("r-never") is None
    raw = await sim.http.get(f"{sim.url}/v1/charges", params={"idempotency_key": "k-never"})
    assert raw.json() == {"data": [], "has_more": False}


async def test_find_answers_what_the_key_made(start_sim: StartSim) -> None:
    sim = await start_sim()
    made = await sim.gateway.charge(charge("k-find", "tok_card_declined"))
    assert await sim.gateway.find_charge("k-find") == made
    captured = await sim.gateway.charge(charge("k-find-ok", "tok_success"))
    refunded = await sim.gateway.refund(refund("r-find", captured.gateway_reference, "3.00"))
    assert await sim.gateway.find_refund("r-find") == refunded
    # A timeout stores nothing, so its key is a definite "never happened".
    with pytest.raises(errors.DependencyUnavailable):
        await sim.gateway.charge(charge("k-find-504", "tok_gateway_timeout"))
    assert await sim.gateway.find_charge("k-find-504") is None


async def _five_transactions(sim: Sim) -> list[str]:
    """Three charges and two refunds, in the order made: their gateway references."""
    made: list[str] = []
    first = await sim.gateway.charge(charge("k-p1", "tok_success"))
    made.append(first.gateway_reference)
    made.append(
        (await sim.gateway.charge(charge("k-p2", "tok_insufficient_funds"))).gateway_reference
    )
    made.append(
        (
            await sim.gateway.refund(refund("r-p1", first.gateway_reference, "2.00"))
        ).gateway_reference
    )
    made.append((await sim.gateway.charge(charge("k-p3", "tok_success"))).gateway_reference)
    made.append(
        (
            await sim.gateway.refund(refund("r-p2", first.gateway_reference, "8.00"))
        ).gateway_reference
    )
    return made


async def test_transactions_page_oldest_first(start_sim: StartSim) -> None:
    sim = await start_sim()
    since = datetime.now(UTC) - timedelta(seconds=1)
    made = await _five_transactions(sim)
    pages: list[list[GatewayTransaction]] = []
    cursor: str | None = None
    while True:
        page = await sim.gateway.list_transactions(since, cursor, limit=2)
        pages.append(page.transactions)
        cursor = page.next_cursor
        if cursor is None:
            break
    assert [len(p) for p in pages] == [2, 2, 1]
    listed = [t for p in pages for t in p]
    assert [t.gateway_reference for t in listed] == made
    assert listed == (await sim.gateway.list_transactions(since)).transactions
    assert [t.kind for t in listed] == ["charge", "charge", "refund", "charge", "refund"]
    assert all(t.created_at.tzinfo is not None and t.created_at >= since for t in listed)
    refunds = [t for t in listed if t.kind == "refund"]
    assert {t.charge_reference for t in refunds} == {made[0]}
    assert [(t.status, str(t.amount)) for t in refunds] == [
        ("succeeded", "2.00"),
        ("succeeded", "8.00"),
    ]
    declined = listed[1]
    assert (declined.status, declined.decline_code) == ("failed", "insufficient_funds")
    assert declined.metadata["bill_id"] == "bill-k-p2"
    assert declined.metadata["workflow_id"] == "wf-1"


async def test_transactions_start_at_since(start_sim: StartSim) -> None:
    sim = await start_sim()
    await sim.gateway.charge(charge("k-before", "tok_success"))
    listed = await sim.gateway.list_transactions(datetime.now(UTC) - timedelta(days=1))
    cut = listed.transactions[0].created_at
    later = await sim.gateway.charge(charge("k-after", "tok_success"))
    # `since` is inclusive: the first transaction's own time still lists it.
    at_cut = await sim.gateway.list_transactions(cut)
    assert [t.idempotency_key for t in at_cut.transactions] == ["k-before", "k-after"]
    after = await sim.gateway.list_transactions(cut + timedelta(microseconds=1))
    assert [t.gateway_reference for t in after.transactions] == [later.gateway_reference]
    assert after.next_cursor is None
    future = await sim.gateway.list_transactions(datetime.now(UTC) + timedelta(hours=1))
    assert (future.transactions, future.next_cursor) == ([], None)


async def test_a_pending_transfer_is_listed_pending_then_settled(start_sim: StartSim) -> None:
    sim = await start_sim()
    since = datetime.now(UTC) - timedelta(seconds=1)
    await sim.gateway.charge(
        charge("k-list-bank", "tok_success", method=PaymentMethodType.BANK_TRANSFER)
    )
    (pending,) = (await sim.gateway.list_transactions(since)).transactions
    assert (pending.status, pending.method_type) == ("pending", "bank_transfer")
    await sim.receiver.wait_for(1)
    (settled,) = (await sim.gateway.list_transactions(since)).transactions
    assert settled.status == ChargeStatus.SUCCEEDED.value
    assert settled.authorization_code is not None


async def test_bad_listing_requests_are_invalid_input(start_sim: StartSim) -> None:
    sim = await start_sim()
    with pytest.raises(errors.InvalidInput, match="invalid_cursor"):
        await sim.gateway.list_transactions(datetime.now(UTC), cursor="not-a-cursor")
    with pytest.raises(errors.InvalidInput, match="time zone"):
        await sim.gateway.list_transactions(datetime(2024, 1, 1))  # noqa: DTZ001
    with pytest.raises(errors.InvalidInput):
        await sim.gateway.list_transactions(datetime.now(UTC), limit=501)
