"""The gateway simulator, served in-process by uvicorn, driven through SimulatorGateway."""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request, Response

from billing import errors
from billing.payments import (
    ChargeRequest,
    ChargeStatus,
    DeclineKind,
    PaymentGateway,
    PaymentMethodType,
    RefundRequest,
)
from billing.webhooks import SIGNATURE_HEADER, GatewayEvent, verify
from config.settings import Settings
from gateway_sim.app import create_app
from payments.simulator import SimulatorGateway

from .harness import Served, serve

SECRET = "whsec_integration_test"
SEED = 7
RATE = 0.5


@dataclass
class Receiver:
    """A webhook endpoint that records what arrives and fails the first `fail_first` tries."""

    fail_first: int = 0
    received: list[tuple[str | None, bytes]] = field(default_factory=list)
    tries: int = 0
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def wait_for(self, count: int, within: float = 5.0) -> None:
        async with asyncio.timeout(within), self.changed:
            await self.changed.wait_for(lambda: len(self.received) >= count)

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/v1/webhooks/gateway")
        async def hook(request: Request) -> Response:
            self.tries += 1
            if self.tries <= self.fail_first:
                return Response(status_code=503)
            body = await request.body()
            async with self.changed:
                self.received.append((request.headers.get(SIGNATURE_HEADER), body))
                self.changed.notify_all()
            return Response(status_code=204)

        return app


@dataclass
class Sim:
    url: str
    gateway: SimulatorGateway
    receiver: Receiver
    http: httpx.AsyncClient

    async def sim_charges(self, **params: str) -> dict[str, Any]:
        response = await self.http.get(f"{self.url}/_sim/charges", params=params)
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result


StartSim = Callable[..., Awaitable[Sim]]


@pytest.fixture
async def start_sim(tmp_path: Path) -> AsyncIterator[StartSim]:
    servers: list[Served] = []

    async def start_server(app: FastAPI) -> str:
        servers.append(Served(app))
        return await servers[-1].start()

    async with AsyncExitStack() as stack:
        http = await stack.enter_async_context(httpx.AsyncClient(timeout=5))
        # Stopped together: each uvicorn shutdown idles ~0.2 s, in sequence that adds up.
        stack.push_async_callback(lambda: asyncio.gather(*(s.stop() for s in servers)))

        async def start(receiver: Receiver | None = None, **overrides: Any) -> Sim:
            receiver = receiver or Receiver()
            hook_url = await start_server(receiver.app())
            values: dict[str, Any] = {
                "environment": "test",
                "gateway_db_path": str(tmp_path / "sim" / "gateway.sqlite3"),
                "bank_transfer_settlement_delay": "300ms",
                "gateway_webhook_url": f"{hook_url}/v1/webhooks/gateway",
                "gateway_webhook_secret": SECRET,
                "gateway_seed": SEED,
                "gateway_success_rate": RATE,
            } | overrides
            url = await start_server(create_app(Settings(**values), webhook_backoff_s=0.05))
            gateway = SimulatorGateway(url, timeout_s=5)
            stack.push_async_callback(gateway.aclose)
            return Sim(url, gateway, receiver, http)

        yield start


def charge(
    key: str,
    token: str,
    amount: str = "10.00",
    method: PaymentMethodType = PaymentMethodType.CREDIT_CARD,
) -> ChargeRequest:
    return ChargeRequest(
        idempotency_key=key,
        amount=Decimal(amount),
        currency="USD",
        method_type=method,
        token=token,
        description="test charge",
        metadata={"bill_id": f"bill-{key}", "customer_id": "cus_1", "workflow_id": "wf-1"},
    )


async def test_the_adapter_is_a_payment_gateway() -> None:
    # The annotation is the check: mypy refuses it if the adapter drifts from the protocol.
    gateway: PaymentGateway = SimulatorGateway("http://127.0.0.1:1")
    assert isinstance(gateway, SimulatorGateway)
    await gateway.aclose()


async def test_tok_success_is_captured_with_an_authorization_code(start_sim: StartSim) -> None:
    sim = await start_sim()
    outcome = await sim.gateway.charge(charge("k-ok", "tok_success", "12.34"))
    assert outcome.status is ChargeStatus.SUCCEEDED
    assert outcome.gateway_reference.startswith("ch_")
    assert outcome.authorization_code is not None
    assert len(outcome.authorization_code) == 6
    assert (outcome.amount, outcome.currency) == (Decimal("12.34"), "USD")
    assert outcome.decline_code is None
    assert await sim.gateway.get_charge(outcome.gateway_reference) == outcome
    stored = await sim.sim_charges(bill_id="bill-k-ok")
    assert stored["captures"] == 1
    assert stored["charges"][0]["metadata"]["workflow_id"] == "wf-1"


@pytest.mark.parametrize(
    ("token", "code", "kind"),
    [
        ("tok_insufficient_funds", "insufficient_funds", DeclineKind.SOFT),
        ("tok_card_declined", "card_declined", DeclineKind.HARD),
    ],
)
async def test_declining_tokens_answer_a_failed_outcome(
    start_sim: StartSim, token: str, code: str, kind: DeclineKind
) -> None:
    sim = await start_sim()
    outcome = await sim.gateway.charge(charge(f"k-{token}", token))
    assert outcome.status is ChargeStatus.FAILED
    assert (outcome.decline_code, outcome.decline_kind) == (code, kind)
    assert outcome.message
    assert outcome.authorization_code is None
    assert (await sim.sim_charges(idempotency_key=f"k-{token}"))["captures"] == 0


async def test_tok_gateway_timeout_is_transient_and_stores_nothing(start_sim: StartSim) -> None:
    sim = await start_sim()
    with pytest.raises(errors.DependencyUnavailable, match="gateway_timeout"):
        await sim.gateway.charge(charge("k-timeout", "tok_gateway_timeout"))
    assert (await sim.sim_charges(idempotency_key="k-timeout"))["charges"] == []


async def test_an_unreachable_gateway_is_a_dependency_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    gateway = SimulatorGateway(f"http://127.0.0.1:{port}", timeout_s=1)
    try:
        with pytest.raises(errors.DependencyUnavailable, match="unreachable"):
            await gateway.charge(charge("k-down", "tok_success"))
    finally:
        await gateway.aclose()


async def test_the_same_key_twice_is_one_capture(start_sim: StartSim) -> None:
    sim = await start_sim()
    first = await sim.gateway.charge(charge("k-twice", "tok_success"))
    second = await sim.gateway.charge(charge("k-twice", "tok_success"))
    assert second == first
    stored = await sim.sim_charges(idempotency_key="k-twice")
    assert len(stored["charges"]) == 1
    assert stored["captures"] == 1


async def test_a_replayed_decline_stays_the_first_result(start_sim: StartSim) -> None:
    sim = await start_sim()
    first = await sim.gateway.charge(charge("k-dec", "tok_card_declined"))
    # Even with a token that would succeed: the key answers its first result.
    second = await sim.gateway.charge(charge("k-dec", "tok_success"))
    assert second == first


async def test_the_same_key_with_another_amount_conflicts(start_sim: StartSim) -> None:
    sim = await start_sim()
    await sim.gateway.charge(charge("k-amount", "tok_success", "10.00"))
    with pytest.raises(errors.Conflict, match="idempotency_key_reused"):
        await sim.gateway.charge(charge("k-amount", "tok_success", "11.00"))


async def test_a_card_number_as_token_is_refused(start_sim: StartSim) -> None:
    sim = await start_sim()
    with pytest.raises(errors.CardNumberRefused):
        await sim.gateway.charge(charge("k-pan", "4242 4242 4242 4242"))


async def test_logs_never_carry_the_token(
    start_sim: StartSim, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    sim = await start_sim()
    secret_token = "tok_private_9f8e7d6c"
    await sim.gateway.charge(charge("k-log", secret_token))
    await sim.gateway.charge(charge("k-log", secret_token))
    with pytest.raises(errors.InvalidInput):
        await sim.gateway.charge(
            charge("k-log-bad", secret_token).model_copy(update={"currency": "usd"})
        )
    assert "k-log" in caplog.text
    assert secret_token not in caplog.text


def _verified_event(header: str | None, body: bytes) -> GatewayEvent:
    verify(SECRET, body, header, now=int(time.time()), tolerance_s=300)
    return GatewayEvent.model_validate_json(body)


async def test_a_bank_transfer_settles_by_a_signed_webhook(start_sim: StartSim) -> None:
    sim = await start_sim()
    request = charge("k-bank", "tok_success", "600.00", PaymentMethodType.BANK_TRANSFER)
    outcome = await sim.gateway.charge(request)
    assert outcome.status is ChargeStatus.PENDING
    assert outcome.authorization_code is None
    await sim.receiver.wait_for(1)
    header, body = sim.receiver.received[0]
    event = _verified_event(header, body)
    assert event.type == "charge.settled"
    assert event.id.startswith("evt_")
    assert event.data.gateway_reference == outcome.gateway_reference
    assert event.data.status is ChargeStatus.SUCCEEDED
    assert event.data.amount == Decimal("600.00")
    assert event.data.idempotency_key == "k-bank"
    assert event.data.metadata["bill_id"] == "bill-k-bank"
    with pytest.raises(errors.Unauthenticated):
        verify("whsec_wrong", body, header, now=int(time.time()), tolerance_s=300)
    settled = await sim.gateway.get_charge(outcome.gateway_reference)
    assert settled.status is ChargeStatus.SUCCEEDED
    assert settled.authorization_code is not None
    assert settled.authorization_code == event.data.authorization_code


async def test_a_bank_transfer_without_funds_fails_by_webhook(start_sim: StartSim) -> None:
    sim = await start_sim()
    request = charge(
        "k-bank-nsf", "tok_insufficient_funds", "5.00", PaymentMethodType.BANK_TRANSFER
    )
    outcome = await sim.gateway.charge(request)
    assert outcome.status is ChargeStatus.PENDING
    await sim.receiver.wait_for(1)
    event = _verified_event(*sim.receiver.received[0])
    assert event.type == "charge.failed"
    assert (event.data.decline_code, event.data.decline_kind) == ("insufficient_funds", "soft")
    assert (await sim.sim_charges(idempotency_key="k-bank-nsf"))["captures"] == 0


async def test_webhook_delivery_retries_with_the_same_event(start_sim: StartSim) -> None:
    sim = await start_sim(Receiver(fail_first=2))
    await sim.gateway.charge(
        charge("k-retry", "tok_success", method=PaymentMethodType.BANK_TRANSFER)
    )
    await sim.receiver.wait_for(1)
    assert sim.receiver.tries == 3
    stored = (await sim.sim_charges(idempotency_key="k-retry"))["charges"][0]
    assert (stored["webhook_state"], stored["webhook_attempts"]) == ("delivered", 3)
    assert _verified_event(*sim.receiver.received[0]).id == stored["event_id"]


async def test_a_pending_transfer_survives_a_restart(tmp_path: Path) -> None:
    receiver = Receiver()
    async with serve(receiver.app()) as hook_url:
        settings = Settings(
            environment="test",
            gateway_db_path=str(tmp_path / "restart.sqlite3"),
            bank_transfer_settlement_delay="800ms",
            gateway_webhook_url=f"{hook_url}/v1/webhooks/gateway",
            gateway_webhook_secret=SECRET,
        )
        request = charge("k-restart", "tok_success", method=PaymentMethodType.BANK_TRANSFER)
        async with serve(create_app(settings)) as url:
            gateway = SimulatorGateway(url)
            outcome = await gateway.charge(request)
            await gateway.aclose()
        assert receiver.received == []
        async with serve(create_app(settings)) as url:
            await receiver.wait_for(1)
            event = _verified_event(*receiver.received[0])
            assert event.data.gateway_reference == outcome.gateway_reference
            assert event.data.status is ChargeStatus.SUCCEEDED


def refund(key: str, reference: str, amount: str) -> RefundRequest:
    return RefundRequest(
        idempotency_key=key, charge_reference=reference, amount=Decimal(amount), currency="USD"
    )


async def test_refunds_partial_then_full_and_never_beyond(start_sim: StartSim) -> None:
    sim = await start_sim()
    captured = await sim.gateway.charge(charge("k-refund", "tok_success", "10.00"))
    ref = captured.gateway_reference
    partial = await sim.gateway.refund(refund("r-1", ref, "4.00"))
    assert (partial.status, partial.amount) == ("succeeded", Decimal("4.00"))
    assert partial.gateway_reference.startswith("re_")
    assert await sim.gateway.refund(refund("r-1", ref, "4.00")) == partial
    with pytest.raises(errors.RefundRefused, match="exceeds the 6.00 left"):
        await sim.gateway.refund(refund("r-2", ref, "6.01"))
    rest = await sim.gateway.refund(refund("r-3", ref, "6.00"))
    assert rest.status == "succeeded"
    with pytest.raises(errors.RefundRefused, match="exceeds"):
        await sim.gateway.refund(refund("r-4", ref, "0.01"))
    listed = (
        await sim.http.get(f"{sim.url}/_sim/refunds", params={"charge_reference": ref})
    ).json()
    assert [r["amount"] for r in listed["refunds"]] == ["4.00", "6.00"]
    assert listed["refunded_total"] == "10.00"


async def test_a_refund_of_an_uncaptured_charge_is_refused(start_sim: StartSim) -> None:
    sim = await start_sim()
    declined = await sim.gateway.charge(charge("k-nope", "tok_card_declined"))
    with pytest.raises(errors.RefundRefused, match="charge_not_refundable"):
        await sim.gateway.refund(refund("r-nope", declined.gateway_reference, "1.00"))
    with pytest.raises(errors.RefundRefused, match="charge_not_found"):
        await sim.gateway.refund(refund("r-ghost", "ch_unknown", "1.00"))


async def test_a_timed_out_capture_retried_with_its_key_is_captured_once(
    start_sim: StartSim,
) -> None:
    sim = await start_sim()
    armed = await sim.http.post(
        f"{sim.url}/_sim/faults", json={"delay_after_capture_ms": 1000, "count": 1}
    )
    armed.raise_for_status()
    impatient = SimulatorGateway(sim.url, timeout_s=0.2)
    request = charge("k-unknown", "tok_success")
    try:
        with pytest.raises(errors.DependencyUnavailable, match="timed out"):
            await impatient.charge(request)
    finally:
        await impatient.aclose()
    stored = await sim.sim_charges(idempotency_key="k-unknown")
    assert stored["captures"] == 1
    retried = await sim.gateway.charge(request)
    assert retried.status is ChargeStatus.SUCCEEDED
    assert retried.gateway_reference == stored["charges"][0]["gateway_reference"]
    after = await sim.sim_charges(idempotency_key="k-unknown")
    assert (len(after["charges"]), after["captures"]) == (1, 1)


async def _random_statuses(sim: Sim, prefix: str, n: int) -> list[ChargeStatus]:
    return [
        (await sim.gateway.charge(charge(f"{prefix}-{i}", "tok_random"))).status for i in range(n)
    ]


async def test_the_seed_makes_the_success_rate_deterministic(start_sim: StartSim) -> None:
    sim = await start_sim()
    rng = random.Random(SEED)
    expected = [
        ChargeStatus.SUCCEEDED if rng.random() < RATE else ChargeStatus.FAILED for _ in range(20)
    ]
    assert set(expected) == {ChargeStatus.SUCCEEDED, ChargeStatus.FAILED}
    # Test tokens and replays in between draw nothing from the generator.
    first = await _random_statuses(sim, "a", 10)
    await sim.gateway.charge(charge("a-0", "tok_random"))
    await sim.gateway.charge(charge("other", "tok_success"))
    first += await _random_statuses(sim, "b", 10)
    assert first == expected
    (await sim.http.post(f"{sim.url}/_sim/reset")).raise_for_status()
    assert (await sim.sim_charges())["charges"] == []
    assert await _random_statuses(sim, "c", 20) == expected


async def test_failures_from_the_rate_are_soft_declines(start_sim: StartSim) -> None:
    sim = await start_sim(gateway_success_rate=0.0)
    outcome = await sim.gateway.charge(charge("k-rate", "tok_whatever"))
    assert (outcome.status, outcome.decline_code) == (ChargeStatus.FAILED, "do_not_honor")
    assert outcome.decline_kind is DeclineKind.SOFT
