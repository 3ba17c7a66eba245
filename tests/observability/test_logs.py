"""The log pipeline in the small: JSON lines, the ids of the money flow, secrets masked."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from activities.collect_messages import ChargeAndRecordInput
from activities.gateway_messages import AttemptChargeInput, AttemptOutcome
from activities.ledger_messages import RecordAttemptInput
from config.settings import Settings
from observability.interceptors import _ids
from observability.logs import bound, configure_logging, current_context
from observability.redact import MASK, Redactor, luhn_ok

SETTINGS = Settings(billing_api_key="sk_live_abcdefghijkl", gateway_webhook_secret="hook-secret-1")


@pytest.fixture
def lines() -> Iterator[io.StringIO]:
    """What the configured handler writes, captured; the root logger restored after."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    handler = configure_logging(SETTINGS, "api")
    out = io.StringIO()

    def emit(record: logging.LogRecord) -> None:
        out.write(handler.format(record) + "\n")

    handler.emit = emit  # type: ignore[method-assign]
    try:
        yield out
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])


def records(out: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_a_line_is_json_with_the_bound_ids(lines):
    log = logging.getLogger("billing.test")
    with bound(customer_id="cus_1", bill_id="bill_1"):
        log.info("charging %s", "bill_1", extra={"amount": "10.00"})
        with bound(workflow_id="charge-bill_1"):
            log.warning("declined")
    log.info("outside")
    first, second, third = records(lines)
    assert first["message"] == "charging bill_1"
    assert (first["level"], first["logger"], first["service"]) == ("info", "billing.test", "api")
    assert (first["customer_id"], first["bill_id"], first["amount"]) == ("cus_1", "bill_1", "10.00")
    assert "workflow_id" not in first
    assert second["workflow_id"] == "charge-bill_1"
    assert "customer_id" not in third
    assert current_context() == {}


def test_temporal_sdk_extras_become_fields(lines):
    info = {"workflow_id": "bill-cus_1-2026-01", "run_id": "r1", "workflow_type": "W"}
    logging.getLogger("temporalio.workflow").info("step", extra={"temporal_workflow": info})
    [record] = records(lines)
    assert (record["workflow_id"], record["workflow_type"]) == ("bill-cus_1-2026-01", "W")
    assert "temporal_workflow" not in record


def test_secrets_are_masked_in_messages_extras_and_tracebacks(lines):
    log = logging.getLogger("billing.test")
    log.info("key sk_live_abcdefghijkl token tok_visa_1234 header Bearer ck_abc.def",
             extra={"note": "hook-secret-1 4242-4242-4242-4242"})  # fmt: skip
    try:
        raise ValueError("postgresql://billing:hunter22@db/billing card 4000056655665556")
    except ValueError:
        log.exception("failed")
    text = lines.getvalue()
    for secret in ("sk_live_abcdefghijkl", "tok_visa_1234", "ck_abc.def", "hook-secret-1",
                   "4242-4242-4242-4242", "hunter22", "4000056655665556"):  # fmt: skip
        assert secret not in text
    first, second = records(lines)
    assert first["message"] == f"key {MASK} token tok_{MASK} header Bearer {MASK}"
    assert first["note"] == f"{MASK} [CARD]"
    assert "ValueError: postgresql://billing:[REDACTED]@db/billing card [CARD]" in second["exc"]


def test_ids_and_amounts_survive_redaction():
    redact = Redactor(["sk_live_abcdefghijkl"])
    kept = "cus_4f2a bill_9c1e charge-bill_9c1e-attempt-2 amount 1234567890123 at 2026-01-31"
    assert redact(kept) == kept  # 13 digits that fail the Luhn check are not a card
    # Luhn-valid digits inside an id (a customer id's hex tail, then the period) are no card.
    workflow_id = "bill-cus_8824db4242424242-4242"
    assert redact(workflow_id) == workflow_id
    for card in ("4242424242424242", "4242 4242 4242 4242", "3782-822463-10005"):
        assert redact(f"card {card}.") == "card [CARD]."
    assert luhn_ok("4242424242424242")
    assert not luhn_ok("4242424242424241")
    assert Redactor(["short"])("short") == "short"  # too short to be a configured secret


def test_configuring_twice_keeps_one_handler_and_routes_uvicorn_to_it():
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        configure_logging(SETTINGS, "api")
        configure_logging(SETTINGS, "api")
        ours = [h for h in root.handlers if getattr(h, "billing", False)]
        assert len(ours) == 1
        access = logging.getLogger("uvicorn.access")
        assert access.propagate
        assert not access.handlers
        text = configure_logging(SETTINGS.model_copy(update={"log_format": "text"}), "api")
        assert not isinstance(text.formatter, type(ours[0].formatter))
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])


def test_an_activity_input_names_its_customer_and_bill():
    outcome = AttemptOutcome(status="failed", idempotency_key="k")
    assert _ids(RecordAttemptInput(bill_id="bill_1", outcome=outcome)) == {"bill_id": "bill_1"}
    assert _ids(SimpleNamespace(customer_id="cus_1", bill_id="bill_2")) == {
        "customer_id": "cus_1",
        "bill_id": "bill_2",
    }
    assert _ids(None) == {}


def test_the_cycles_own_attempt_names_its_bill():
    """The billing cycle charges a bill itself (charge_and_record): its lines carry the bill."""
    charge = AttemptChargeInput(bill_id="bill_3", idempotency_key="k", workflow_id="w")
    assert _ids(ChargeAndRecordInput(charge=charge)) == {"bill_id": "bill_3"}
