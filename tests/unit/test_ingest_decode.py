"""The usage routes' msgspec decoding refuses and accepts what the domain's model does."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from fastapi.exceptions import RequestValidationError
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from api.ingest.decode import decode_batch, decode_event, openapi_body
from api.schemas import UsageBatch, UsageEventBody
from billing.metering import UsageEventIn

GOOD = {"event_id": "evt_1.a:b-C", "customer_id": "cus_1", "kind": "llm_tokens", "quantity": 1500}

CASES = [
    {},
    {"event_id": "x" * 128},
    {"occurred_at": "2026-11-15T13:00:00+01:00"},
    {"occurred_at": "2026-11-15T12:00:00Z"},
    {"occurred_at": None},
    {"event_id": ""},
    {"event_id": "x" * 129},
    {"event_id": "has space"},
    {"event_id": "é"},
    {"event_id": "trailing\n"},
    {"event_id": "mid\nline"},
    {"event_id": "a,b"},
    {"event_id": None},
    {"customer_id": ""},
    {"customer_id": "c" * 129},
    {"kind": "sms"},
    {"kind": None},
    {"quantity": 0},
    {"quantity": -1},
    {"quantity": 1_000_000_000},
    {"quantity": 1_000_000_001},
    {"quantity": 1.0},
    {"quantity": 1.5},
    {"quantity": "5"},
    {"quantity": True},
    {"occurred_at": "2026-11-15T12:00:00"},
    {"occurred_at": "yesterday"},
    {"occured_at": "2026-11-15T12:00:00Z"},
]


def _pydantic_accepts(body: dict[str, object]) -> bool:
    try:
        UsageEventBody.model_validate_json(json.dumps(body))
    except ValidationError:
        return False
    return True


@pytest.mark.parametrize("change", CASES)
def test_msgspec_and_pydantic_agree(change):
    body = {**GOOD, **change}
    raw = json.dumps(body).encode()
    if _pydantic_accepts(body):
        event = decode_event(raw, "application/json")
        model = UsageEventIn.model_validate_json(raw)
        assert (event.event_id, event.customer_id, event.kind, event.quantity) == (
            model.event_id,
            model.customer_id,
            model.kind,
            model.quantity,
        )
        assert event.utc_occurred_at() == model.occurred_at
    else:
        with pytest.raises(RequestValidationError) as refused:
            decode_event(raw, "application/json")
        [error] = refused.value.errors()
        assert error["type"] == "value_error"


def test_occurred_at_comes_out_in_utc():
    raw = json.dumps({**GOOD, "occurred_at": "2026-11-15T13:00:00+01:00"}).encode()
    at = decode_event(raw, None).utc_occurred_at()
    assert at == datetime(2026, 11, 15, 12, tzinfo=UTC)
    assert at is not None
    assert at.tzinfo is UTC


def test_a_batch_error_names_the_event_and_field():
    raw = json.dumps({"events": [GOOD, {**GOOD, "quantity": 1.5}]}).encode()
    with pytest.raises(RequestValidationError) as refused:
        decode_batch(raw, "application/json")
    [error] = refused.value.errors()
    assert error["loc"] == ("body", "events", 1, "quantity")
    with pytest.raises(RequestValidationError):
        decode_batch(json.dumps({"events": []}).encode(), None)
    with pytest.raises(RequestValidationError):
        decode_batch(json.dumps({"events": [GOOD] * 5001}).encode(), None)
    assert len(decode_batch(json.dumps({"events": [GOOD] * 5000}).encode(), None)) == 5000


@pytest.mark.parametrize(
    ("raw", "content_type"),
    [(b'{"event_id": "e1", ', "application/json"), (b"events=1", "text/plain"), (b"", None)],
)
def test_what_is_not_json_is_json_invalid(raw, content_type):
    with pytest.raises(RequestValidationError) as refused:
        decode_event(raw, content_type)
    assert refused.value.errors()[0]["type"] == "json_invalid"


def test_the_openapi_body_is_the_models_schema_inline():
    extra = openapi_body(UsageBatch)
    schema = extra["requestBody"]["content"]["application/json"]["schema"]
    event = schema["properties"]["events"]["items"]
    assert "$ref" not in json.dumps(schema)
    assert set(event["required"]) == {"event_id", "customer_id", "kind", "quantity"}
    assert event["properties"]["kind"]["enum"] == ["api_call", "llm_tokens", "agent_execution"]
    assert schema["properties"]["events"]["maxItems"] == 5000


@pytest.mark.parametrize("bad", ["mid\nline", "trailing\n", "a,b", "sp ace", ""])
def test_one_bad_id_in_a_batch_is_named(bad):
    events = [GOOD, {**GOOD, "event_id": "fine-2"}, {**GOOD, "event_id": bad}]
    with pytest.raises(RequestValidationError) as refused:
        decode_batch(json.dumps({"events": events}).encode(), None)
    [error] = refused.value.errors()
    assert error["loc"] == ("body", "events", 2, "event_id")


@given(st.lists(st.text(alphabet="ab_.:-\n ,é\x00", max_size=6), min_size=1, max_size=5))
def test_a_batch_is_accepted_exactly_when_every_id_is(ids):
    events = [{**GOOD, "event_id": event_id} for event_id in ids]
    raw = json.dumps({"events": events}).encode()
    if all(_pydantic_accepts(e) for e in events):
        assert [e.event_id for e in decode_batch(raw, None)] == ids
    else:
        with pytest.raises(RequestValidationError):
            decode_batch(raw, None)
