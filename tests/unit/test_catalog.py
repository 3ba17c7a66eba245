"""The default catalog matches the product contract; overrides reach enterprise only."""

from __future__ import annotations

from decimal import Decimal

import pytest
from pydantic import ValidationError

from billing.catalog import (
    DEFAULT_CATALOG,
    TIER_ORDER,
    ContractOverrides,
    PriceCatalog,
    Tier,
    TierPlan,
    UsageKind,
    is_upgrade,
    tier_of,
)
from billing.errors import InvalidInput

PAID = [Tier.STARTER, Tier.PROFESSIONAL, Tier.ENTERPRISE]
CONTRACT = ContractOverrides(
    unit_prices={UsageKind.API_CALL: Decimal("0.0005")}, api_calls_per_hour=500_000
)


@pytest.mark.parametrize(
    ("tier", "fee", "limit"),
    [
        (Tier.FREE, "0.00", 1_000),
        (Tier.STARTER, "10.00", 10_000),
        (Tier.PROFESSIONAL, "50.00", 100_000),
        (Tier.ENTERPRISE, "500.00", None),
    ],
)
def test_default_tiers(tier, fee, limit):
    assert str(DEFAULT_CATALOG.base_fee(tier)) == fee
    assert DEFAULT_CATALOG.hourly_api_limit(tier) == limit
    assert DEFAULT_CATALOG.currency == "USD"


@pytest.mark.parametrize("tier", PAID)
@pytest.mark.parametrize(
    ("kind", "price"),
    [
        (UsageKind.API_CALL, "0.001"),
        (UsageKind.LLM_TOKENS, "0.00002"),
        (UsageKind.AGENT_EXECUTION, "0.01"),
    ],
)
def test_paid_tiers_charge_sub_cent_prices(tier, kind, price):
    assert str(DEFAULT_CATALOG.unit_price(tier, kind)) == price


@pytest.mark.parametrize("kind", list(UsageKind))
def test_free_usage_is_not_charged(kind):
    assert DEFAULT_CATALOG.unit_price(Tier.FREE, kind) == 0
    assert DEFAULT_CATALOG.unit_price(Tier.FREE, kind, CONTRACT) == 0


def test_overrides_apply_to_enterprise_only():
    assert (
        str(DEFAULT_CATALOG.unit_price(Tier.ENTERPRISE, UsageKind.API_CALL, CONTRACT)) == "0.0005"
    )
    assert (
        str(DEFAULT_CATALOG.unit_price(Tier.ENTERPRISE, UsageKind.LLM_TOKENS, CONTRACT))
        == "0.00002"
    )
    assert (
        str(DEFAULT_CATALOG.unit_price(Tier.PROFESSIONAL, UsageKind.API_CALL, CONTRACT)) == "0.001"
    )
    assert DEFAULT_CATALOG.hourly_api_limit(Tier.ENTERPRISE, CONTRACT) == 500_000
    assert DEFAULT_CATALOG.hourly_api_limit(Tier.ENTERPRISE, ContractOverrides()) is None
    assert DEFAULT_CATALOG.hourly_api_limit(Tier.STARTER, CONTRACT) == 10_000


def test_overrides_from_jsonb_shape():
    parsed = ContractOverrides.model_validate(
        {"unit_prices": {"llm_tokens": "0.00001"}, "api_calls_per_hour": 7, "usage_discount": "0.1"}
    )
    assert parsed.unit_prices == {UsageKind.LLM_TOKENS: Decimal("0.00001")}
    assert parsed.usage_discount == Decimal("0.1")
    assert ContractOverrides.model_validate({}) == ContractOverrides()


@pytest.mark.parametrize(
    "bad",
    [
        {"usage_discount": "1.01"},
        {"usage_discount": "-0.1"},
        {"unit_prices": {"api_call": "-1"}},
        {"api_calls_per_hour": 0},
    ],
)
def test_overrides_refuse_nonsense(bad):
    with pytest.raises(ValidationError):
        ContractOverrides.model_validate(bad)


def test_is_upgrade_follows_tier_order():
    assert TIER_ORDER == (Tier.FREE, Tier.STARTER, Tier.PROFESSIONAL, Tier.ENTERPRISE)
    for i, low in enumerate(TIER_ORDER):
        for j, high in enumerate(TIER_ORDER):
            assert is_upgrade(low, high) is (j > i)
    assert not is_upgrade(Tier.STARTER, Tier.STARTER)


def test_catalog_must_be_complete_and_monotonic():
    plans = dict(DEFAULT_CATALOG.plans)
    del plans[Tier.PROFESSIONAL]
    with pytest.raises(ValidationError, match="lacks professional"):
        PriceCatalog(plans=plans, unit_prices=DEFAULT_CATALOG.unit_prices)
    cheap = dict(DEFAULT_CATALOG.plans)
    cheap[Tier.ENTERPRISE] = TierPlan(
        tier=Tier.ENTERPRISE, base_fee=Decimal("1"), api_calls_per_hour=None, charges_usage=True
    )
    with pytest.raises(ValidationError, match="must not decrease"):
        PriceCatalog(plans=cheap, unit_prices=DEFAULT_CATALOG.unit_prices)
    mislabelled = dict(DEFAULT_CATALOG.plans)
    mislabelled[Tier.STARTER] = DEFAULT_CATALOG.plans[Tier.PROFESSIONAL]
    with pytest.raises(ValidationError, match="labelled"):
        PriceCatalog(plans=mislabelled, unit_prices=DEFAULT_CATALOG.unit_prices)
    with pytest.raises(InvalidInput, match="unknown currency"):
        PriceCatalog(
            currency="XYZ", plans=DEFAULT_CATALOG.plans, unit_prices=DEFAULT_CATALOG.unit_prices
        )


def test_tier_of():
    assert tier_of("starter") is Tier.STARTER
    with pytest.raises(InvalidInput, match="unknown tier 'gold'"):
        tier_of("gold")
