"""Usage events: validated at the door, costed exactly, never from the far future."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from billing.catalog import DEFAULT_CATALOG, ContractOverrides, Tier, UsageKind
from billing.errors import InvalidInput
from billing.events import EventType
from billing.metering import (
    TierChange,
    UsageEventIn,
    check_occurred_at,
    check_subscribed,
    event_cost,
    limit_notices,
    limited_message,
    plan_for,
    tier_at,
)

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


def test_usage_before_the_subscription_began_is_refused():
    started = datetime(2026, 10, 10, tzinfo=UTC)
    check_subscribed(started, started)
    check_subscribed(started + timedelta(microseconds=1), started)
    with pytest.raises(InvalidInput, match=r"before the customer's started_at 2026-10-10T00:00"):
        check_subscribed(started - timedelta(microseconds=1), started)


def _at(day: int, hour: int = 0) -> datetime:
    return datetime(2026, 10, day, hour, tzinfo=UTC)


HISTORY = [
    TierChange(_at(1), Tier.STARTER, Tier.STARTER),  # created
    TierChange(_at(10), Tier.STARTER, Tier.PROFESSIONAL),
    TierChange(_at(20), Tier.PROFESSIONAL, Tier.FREE),
]


@pytest.mark.parametrize(
    ("at", "tier"),
    [
        (_at(1), Tier.STARTER),
        (_at(9, 23), Tier.STARTER),
        (_at(10), Tier.PROFESSIONAL),  # a change applies from its own instant
        (_at(19, 23), Tier.PROFESSIONAL),
        (_at(20), Tier.FREE),
        (datetime(2027, 1, 1, tzinfo=UTC), Tier.FREE),
    ],
)
def test_tier_at_is_the_last_change_at_or_before(at, tier):
    assert tier_at(HISTORY, at) is tier
    assert tier_at(list(reversed(HISTORY)), at) is tier  # the order given does not matter


def test_tier_at_before_the_first_change_is_the_tier_it_changed_from():
    since_the_10th = HISTORY[1:]  # a history read from a later change on
    assert tier_at(since_the_10th, _at(5)) is Tier.STARTER
    assert tier_at([], _at(5)) is None


def test_tier_at_the_same_instant_the_later_change_wins():
    twice = [
        TierChange(_at(10), Tier.FREE, Tier.STARTER),
        TierChange(_at(10), Tier.STARTER, Tier.PROFESSIONAL),
    ]
    assert tier_at(twice, _at(10)) is Tier.PROFESSIONAL
    assert tier_at(twice, _at(9)) is Tier.FREE


@given(
    st.lists(st.tuples(st.integers(0, 100), st.sampled_from(Tier)), min_size=1, max_size=8),
    st.integers(-1, 101),
)
def test_tier_at_agrees_with_a_linear_scan(steps, hour):
    start = datetime(2026, 10, 1, tzinfo=UTC)
    changes = [TierChange(start + timedelta(hours=h), Tier.FREE, tier) for h, tier in sorted(steps)]
    at = start + timedelta(hours=hour)
    in_force = [c.to_tier for c in changes if c.effective_at <= at]
    assert tier_at(changes, at) == (in_force[-1] if in_force else Tier.FREE)


def _plan(tier: Tier, **terms):
    values = {"auto_upgrade": True, "has_payment_method": True, "active": True} | terms
    return plan_for(
        DEFAULT_CATALOG,
        customer_id="cus_1",
        tier=tier,
        overrides=ContractOverrides(),
        started_at=NOW,
        tier_since=None,
        **values,
    )


def test_a_free_customer_who_can_pay_is_limited_as_the_tier_it_converts_to():
    convertible = _plan(Tier.FREE)
    assert (convertible.converts, convertible.limit, convertible.free_limit) == (
        True,
        10_000,
        1_000,
    )
    for cannot in ({"auto_upgrade": False}, {"has_payment_method": False}, {"active": False}):
        plan = _plan(Tier.FREE, **cannot)
        assert (plan.converts, plan.limit) == (False, 1_000), cannot
    assert _plan(Tier.ENTERPRISE).limit is None


def test_the_429_message_names_the_catalog_limits():
    starter = DEFAULT_CATALOG.plans[Tier.STARTER].model_copy(update={"api_calls_per_hour": 25_000})
    catalog = DEFAULT_CATALOG.model_copy(
        update={"plans": {**DEFAULT_CATALOG.plans, Tier.STARTER: starter}}
    )
    plan = _plan(Tier.FREE, auto_upgrade=False)
    message = limited_message(catalog, plan, limit=1000, count=990, quantity=20)
    assert "the free tier allows 1000 API calls per hour" in message
    assert "990 are counted this hour and these 20 do not fit" in message
    assert "upgrading to starter lifts the limit to 25,000 per hour" in message
    assert "POST /v1/customers/cus_1/upgrade" in message
    paid = limited_message(catalog, _plan(Tier.STARTER), limit=25_000, count=25_000, quantity=1)
    assert "upgrading to a higher tier lifts the limit" in paid


WARNING, REACHED = EventType.USAGE_LIMIT_WARNING, EventType.USAGE_LIMIT_REACHED


@pytest.mark.parametrize(
    ("limit", "count", "allowed", "due"),
    [
        (0, 5_000, True, ()),  # no limit, no notices
        (1_000, 799, True, ()),
        (1_000, 800, True, (WARNING,)),  # 80% exactly
        (1_000, 999, True, (WARNING,)),
        (1_000, 1_000, True, (WARNING, REACHED)),
        (1_000, 10, False, (WARNING, REACHED)),  # a refusal reaches the limit, whatever the count
    ],
)
def test_limit_notices_at_80_and_100_percent(
    limit: int, count: int, allowed: bool, due: tuple[EventType, ...]
) -> None:
    assert limit_notices(limit=limit, count=count, allowed=allowed) == due
