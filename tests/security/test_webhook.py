"""The gateway webhook: only a body signed with the shared secret, within the tolerance.

Stripe-style `Gateway-Signature: t=<unix>,v1=<hmac>`. Refused with 401 and nothing
signalled: no signature, a signature of another body, another secret, a timestamp
older (or newer) than the tolerance, and a genuine request replayed after the
tolerance passed. The genuine request within the tolerance is accepted.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from api.app import create_app
from billing.webhooks import SIGNATURE_HEADER, sign
from tests.integration.harness import serve

TOLERANCE_S = 2


@pytest.fixture
async def hook(settings) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    """An API whose tolerance is 2 s, so a replay beyond it takes seconds to show."""
    short = settings.model_copy(update={"gateway_webhook_tolerance": f"{TOLERANCE_S}s"})
    secret = short.gateway_webhook_secret.get_secret_value()
    async with serve(create_app(short)) as url, httpx.AsyncClient(base_url=url) as client:
        yield client, secret


def _event() -> bytes:
    event = {
        "id": "evt_sec_1",
        "type": "charge.settled",
        "created": int(time.time()),
        "data": {
            "status": "succeeded", "gateway_reference": "ch_sec", "amount": "10.00",
            "currency": "USD", "authorization_code": "A1", "idempotency_key": "k1",
            "metadata": {"workflow_id": "charge-bill_does_not_run"},
        },
    }  # fmt: skip
    return json.dumps(event).encode()


async def _post(client: httpx.AsyncClient, body: bytes, header: str | None) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if header is not None:
        headers[SIGNATURE_HEADER] = header
    return await client.post("/v1/webhooks/gateway", content=body, headers=headers)


async def test_a_genuine_webhook_is_accepted(hook):
    client, secret = hook
    body = _event()
    answer = await _post(client, body, sign(secret, body, int(time.time())))
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"received": True, "signalled": False}  # no such saga runs


@pytest.mark.parametrize(
    ("case", "expected_message"),
    [
        ("missing", "missing"),
        ("garbage", "malformed"),
        ("other body", "does not match"),
        ("other secret", "does not match"),
        ("old", "tolerance"),
        ("future", "tolerance"),
    ],
)
async def test_a_forged_or_stale_webhook_is_refused(hook, case, expected_message):
    client, secret = hook
    body, now = _event(), int(time.time())
    header = {
        "missing": None,
        "garbage": "v1=abc",
        "other body": sign(secret, body.replace(b"10.00", b"99.00"), now),
        "other secret": sign("whsec_not_ours", body, now),
        "old": sign(secret, body, now - TOLERANCE_S - 60),
        "future": sign(secret, body, now + TOLERANCE_S + 60),
    }[case]
    answer = await _post(client, body, header)
    assert answer.status_code == 401, answer.text
    assert answer.json()["error"]["code"] == "unauthenticated"
    assert expected_message in answer.json()["error"]["message"]


async def test_a_captured_webhook_replayed_after_the_tolerance_is_refused(hook):
    client, secret = hook
    body = _event()
    header = sign(secret, body, int(time.time()))
    assert (await _post(client, body, header)).status_code == 200
    await asyncio.sleep(TOLERANCE_S + 1.5)
    replayed = await _post(client, body, header)  # the very same bytes and header
    assert replayed.status_code == 401
    assert "replay" in replayed.json()["error"]["message"]
