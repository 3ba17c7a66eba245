"""No card number, key or token in any log line of a full run, at DEBUG.

The API, the worker and the gateway simulator run as subprocesses, exactly as `make run`
starts them (under the same supervisor), with LOG_LEVEL=DEBUG; every line they write is
kept. The run does what carries secrets: customer keys on requests (and a wrong one),
payment tokens attached and charged, card numbers refused, the service key in the revenue
page's sign-in URL, a forged webhook, declines, a bank transfer settled by webhook, a
refund. Then every line of every log, and of this test process at DEBUG, is searched.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

from config.settings import Settings
from observability.redact import card_numbers
from tests.faults.plans import PERIOD, Plan
from tests.faults.stack import FaultStack, service_stack, stack_settings

CARDS = ["4242424242424242", "4242 4242 4242 4242", "5555-5555-5555-4444", "378282246310005"]
_CLIENT = {"httpx", "httpcore"}
# The cards this run sends, as bare digits: looked for apart from the redactor's pattern.
_SENT_DIGITS = sorted({re.sub(r"\D", "", card) for card in CARDS})
PLANS = [
    Plan("starter", "credit_card", "tok_success", "paid"),
    Plan("starter", "debit_card", "tok_insufficient_funds", "uncollectible"),
    Plan("enterprise", "bank_transfer", "tok_success", "paid"),
    Plan("professional", "paypal", "tok_card_declined", "uncollectible"),
]


async def _full_run(stack: FaultStack) -> list[str]:
    """Everything that handles a secret; returns the customer keys handed out."""
    api, auth = stack.api, stack.auth
    customers = await stack.create_customers(PLANS)
    first = customers[0]
    for card in CARDS:
        refused = await api.post(
            f"/v1/customers/{first.id}/payment-methods",
            json={"type": "credit_card", "token": card},
            headers=auth,
        )
        assert refused.status_code == 422
        assert refused.json()["error"]["code"] == "card_number_refused"
        assert card not in refused.text
    for c in customers:
        mine = {"Authorization": f"Bearer {c.key}"}
        event = {"event_id": f"log-{c.id}", "customer_id": c.id, "kind": "llm_tokens",
                 "quantity": 1000}  # fmt: skip
        assert (await api.post("/v1/usage", json=event, headers=mine)).status_code == 201
        assert (await api.get(f"/v1/customers/{c.id}/bills", headers=mine)).status_code == 200
    wrong = {"Authorization": "Bearer ck_" + "W" * 43}
    assert (await api.get(f"/v1/customers/{first.id}", headers=wrong)).status_code == 401
    service_key = stack.settings.billing_api_key.get_secret_value()
    page = await api.get("/reports", params={"key": service_key}, follow_redirects=False)
    assert page.status_code == 303
    forged = await api.post(
        "/v1/webhooks/gateway", content=b"{}", headers={"Gateway-Signature": "t=1,v1=00"}
    )
    assert forged.status_code == 401
    for c in customers:
        started = await api.post(
            f"/v1/customers/{c.id}/billing-cycles", json={"period": PERIOD}, headers=auth
        )
        assert started.status_code == 202, started.text
    await stack.wait_quiet(120)
    paid = await stack.pool.fetchval(
        "SELECT id FROM bills WHERE customer_id = $1 AND kind = 'cycle'", first.id
    )
    refund = await api.post(
        f"/v1/bills/{paid}/refunds", json={"amount": "2.00", "reason": "log test"}, headers=auth
    )
    assert refund.status_code == 202, refund.text
    await stack.wait_quiet(60)
    return [c.key for c in customers]


def _secrets(settings: Settings, customer_keys: list[str]) -> dict[str, str]:
    values = {
        "service key": settings.billing_api_key.get_secret_value(),
        "webhook secret": settings.gateway_webhook_secret.get_secret_value(),
    }
    codec_key = getattr(settings, "payload_codec_key", None)
    if codec_key is not None:
        values["payload codec key"] = codec_key.get_secret_value()
    values.update({f"customer key {i}": key for i, key in enumerate(customer_keys)})
    return values


def _masked(line: str, run: str) -> str:
    """The line around a card-like run, the run cut to its length and last four digits."""
    at = line.index(run)
    digits = re.sub(r"\D", "", run)
    before, after = line[max(0, at - 120) : at], line[at + len(run) :][:80]
    return f"{before}<{len(digits)} digits ...{digits[-4:]}>{after}"


def _leaks(name: str, text: str, secrets: dict[str, str]) -> list[str]:
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        where = f"{name}:{number}"
        found += [f"{where}: {what}" for what, value in secrets.items() if value in line]
        if "tok_" in line:
            found.append(f"{where}: a payment token: {line[:200]}")
        if re.search(r"\bck_[A-Za-z0-9_-]{8,}", line):
            found.append(f"{where}: a customer key: {line[:200]}")
        found += [f"{where}: a card number: {_masked(line, r)}" for r in card_numbers(line)]
        digits = re.sub(r"\D", "", line)
        found += [f"{where}: a sent card ...{d[-4:]}" for d in _SENT_DIGITS if d in digits]
    return found


def test_the_card_number_search_can_fail():
    assert card_numbers("card 4242 4242 4242 4242 refused") == ["4242 4242 4242 4242"]
    assert card_numbers("bill_1234567890123 amount 1234567890123456") == []
    # An id whose hex tail happens to be digits, then a period: 16 digits, Luhn-valid.
    assert card_numbers("bill-cus_8824db4242424242-4242") == []


async def test_no_secret_in_any_log_line_of_a_full_run(
    database_url, redis_url, temporal_address, tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.DEBUG)
    settings = stack_settings(
        database_url, redis_url, temporal_address, tmp_path, log_level="DEBUG"
    )
    async with service_stack(settings, tmp_path, api_subprocess=True) as stack:
        customer_keys = await _full_run(stack)
    logs = stack.procs.logs()
    assert set(logs) >= {"api", "worker", "gateway"}
    # The logs saw the run: the search below had something to search.
    assert "/v1/usage" in logs["api"]
    assert "billing-cycles" in logs["api"]
    assert "charge ch_" in logs["gateway"]
    assert "GET /reports?key=" in logs["api"]  # the sign-in URL was logged, its key masked
    assert len(logs["worker"].splitlines()) > 20
    secrets = _secrets(settings, customer_keys)
    leaks = [leak for name, text in logs.items() for leak in _leaks(name, text, secrets)]
    # This process runs only the test's own HTTP client, which logs the URLs it is given
    # (the sign-in URL carries the service key on purpose); everything else it logged counts.
    own = "\n".join(r.getMessage() for r in caplog.records if r.name.split(".")[0] not in _CLIENT)
    leaks += _leaks("pytest", own, secrets)
    assert leaks == []
