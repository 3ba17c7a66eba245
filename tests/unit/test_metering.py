"""Usage events: validated at the door, costed exactly, never from the far future."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from pydantic import ValidationError

from billing.catalog import DEFAULT_CATALOG, ContractOverrides, Tier, UsageKind
from billing.errors import InvalidInput
from billing.metering import UsageEventIn, check_occurred_at, event_cost

NOW = datetime(2026, 11, 15, 12, 0, tzinfo=UTC)
GOOD = {"event_id": "evt_1.a:b-C", "customer_id": "cus_1", "kind": "llm_tokens", "quantity": 1500}


def test_event_parses_from_json():
    event = UsageEventIn.model_validate_json(
        '{"event_id": "evt-1", "customer_id": "cus_1", "kind": "api_call", "quantity": 1,'
        ' "occurred_at": "2026-11-15T13:00:00+01:00"}'
    )
    assert event.kind is UsageKind.API_CALL
    assert event.occurred_at == datetime(2026, 11, 15, 12, 0, tzinfo=UTC)
    assert event.occurred_at is not None
    assert event.occurred_at.tzinfo is UTC
    assert UsageEventIn.model_validate(GOOD).occurred_at is None
    assert UsageEventIn.model_validate({**GOOD, "event_id": "x" * 128}).quantity == 1500


@pytest.mark.parametrize(
    "bad",
    [
        {"event_id": ""},
        {"event_id": "x" * 129},
        {"event_id": "has space"},
        {"event_id": "é"},
        {"customer_id": ""},
        {"kind": "sms"},
        {"quantity": 0},
        {"quantity": -1},
        {"quantity": 1_000_000_001},
        {"quantity": 1.0},
        {"quantity": "5"},
        {"quantity": True},
        {"occurred_at": "2026-11-15T12:00:00"},
    ],
)
def test_event_refuses(bad):
    with pytest.raises(ValidationError):
        UsageEventIn.model_validate({**GOOD, **bad})


def test_occurred_at_defaults_to_now_and_may_be_past():
    assert check_occurred_at(None, NOW) == NOW
    past = datetime(2026, 10, 31, 23, 0, tzinfo=timezone(timedelta(hours=-5)))
    assert check_occurred_at(past, NOW) == datetime(2026, 11, 1, 4, 0, tzinfo=UTC)
    assert check_occurred_at(NOW + timedelta(minutes=5), NOW) == NOW + timedelta(minutes=5)


def test_occurred_at_far_in_the_future_is_refused():
    with pytest.raises(InvalidInput, match="more than 5 minutes in the future"):
        check_occurred_at(NOW + timedelta(minutes=5, microseconds=1), NOW)
    with pytest.raises(InvalidInput, match="no timezone"):
        check_occurred_at(datetime(2026, 11, 15), NOW)  # noqa: DTZ001 - the naive input is the point


@pytest.mark.parametrize(
    ("tier", "kind", "quantity", "price", "cost"),
    [
        (Tier.STARTER, UsageKind.LLM_TOKENS, 1_234, "0.00002", "0.02468"),
        (Tier.PROFESSIONAL, UsageKind.API_CALL, 1_000_000_000, "0.001", "1000000.000"),
        (Tier.ENTERPRISE, UsageKind.AGENT_EXECUTION, 3, "0.01", "0.03"),
        (Tier.FREE, UsageKind.API_CALL, 999, "0", "0"),
    ],
)
def test_event_cost_is_exact_and_unrounded(tier, kind, quantity, price, cost):
    unit_price, total = event_cost(DEFAULT_CATALOG, tier, kind, quantity)
    assert (str(unit_price), str(total)) == (price, cost)


def test_event_cost_uses_contract_prices():
    contract = ContractOverrides(unit_prices={UsageKind.API_CALL: Decimal("0.0000123456789")})
    unit_price, cost = event_cost(
        DEFAULT_CATALOG, Tier.ENTERPRISE, UsageKind.API_CALL, 999_999_999, contract
    )
    assert str(unit_price) == "0.0000123456789"
    assert str(cost) == "12345.6788876543211"
