"""Bills: one rounding per line, one for tax, totals that add up, prorations in range."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from billing.bills import BillDraft, BillLine, UsageAggregate, build_cycle_bill, build_upgrade_bill
from billing.catalog import (
    DEFAULT_CATALOG,
    ContractOverrides,
    PriceCatalog,
    Tier,
    UsageKind,
)
from billing.errors import InvalidInput

LONG_AGO = datetime(2020, 1, 1, tzinfo=UTC)
MICRO = timedelta(microseconds=1)


def usage(kind: UsageKind, price: str, quantity: int) -> UsageAggregate:
    return UsageAggregate(kind=kind, unit_price=Decimal(price), quantity=quantity)


def figures(bill: BillDraft) -> list[tuple[str, str]]:
    return [(line.kind, str(line.amount)) for line in bill.lines]


def cycle_bill(tier: Tier, **changes: object) -> BillDraft:
    """`build_cycle_bill` of 2026-11, for a customer subscribed long ago, no tax, no usage,
    at the default prices: each test passes what it is about."""
    args: dict[str, Any] = {
        "catalog": DEFAULT_CATALOG,
        "period": "2026-11",
        "tier": tier,
        "tax_rate": Decimal(0),
        "usage": [],
        "started_at": LONG_AGO,
    }
    return build_cycle_bill(**(args | changes))


def upgrade_bill(from_tier: Tier, to_tier: Tier, at: datetime, **changes: object) -> BillDraft:
    """`build_upgrade_bill` at the default prices, no tax unless the test passes one."""
    args: dict[str, Any] = {"catalog": DEFAULT_CATALOG, "tax_rate": Decimal(0)}
    return build_upgrade_bill(from_tier=from_tier, to_tier=to_tier, at=at, **(args | changes))


def test_enterprise_sanity_figure():
    bill = cycle_bill(
        Tier.ENTERPRISE,
        usage=[
            usage(UsageKind.API_CALL, "0.001", 50_000),
            usage(UsageKind.LLM_TOKENS, "0.00002", 2_000_000),
            usage(UsageKind.AGENT_EXECUTION, "0.01", 1_000),
        ],
    )
    assert figures(bill) == [
        ("base_fee", "500.00"),
        ("api_call", "50.00"),
        ("llm_tokens", "40.00"),
        ("agent_execution", "10.00"),
    ]
    assert (str(bill.subtotal), str(bill.tax), str(bill.total)) == ("600.00", "0.00", "600.00")
    assert [line.description for line in bill.lines] == [
        "Enterprise plan, 2026-11",
        "API calls at $0.001 each",
        "LLM tokens at $0.02 per 1,000",
        "Agent executions at $0.01 each",
    ]
    assert bill.lines[0].quantity == 1


def test_tax_is_rounded_once_on_the_rounded_subtotal():
    # Lines 0.004 + 0.004 would be 0.008 -> 0.01 if summed before rounding; each rounds to 0.00.
    bill = cycle_bill(
        Tier.STARTER,
        tax_rate=Decimal("0.0825"),
        usage=[usage(UsageKind.API_CALL, "0.001", 4), usage(UsageKind.AGENT_EXECUTION, "0.001", 4)],
    )
    assert figures(bill) == [
        ("base_fee", "10.00"),
        ("api_call", "0.00"),
        ("agent_execution", "0.00"),
    ]
    # 10.00 * 0.0825 = 0.825 -> 0.83 (half up)
    assert (str(bill.subtotal), str(bill.tax), str(bill.total)) == ("10.00", "0.83", "10.83")


def test_first_period_is_prorated_from_started_at():
    bill = cycle_bill(
        Tier.STARTER, tax_rate=Decimal("0.0825"), started_at=datetime(2026, 11, 15, tzinfo=UTC)
    )
    (base,) = bill.lines
    assert base.description == "Starter plan, 2026-11, from 2026-11-15 (16 of 30 days)"
    assert (str(base.quantity), str(base.unit_price), str(base.amount)) == (
        "0.5333",
        "10.00",
        "5.33",
    )
    assert (str(bill.subtotal), str(bill.tax), str(bill.total)) == ("5.33", "0.44", "5.77")


def test_started_exactly_at_the_period_start_pays_the_full_fee():
    bill = cycle_bill(Tier.PROFESSIONAL, started_at=datetime(2026, 11, 1, tzinfo=UTC))
    (base,) = bill.lines
    assert (base.description, str(base.quantity), str(base.amount)) == (
        "Professional plan, 2026-11",
        "1",
        "50.00",
    )


def test_period_before_the_subscription_is_refused():
    with pytest.raises(InvalidInput, match="before the subscription started"):
        cycle_bill(Tier.STARTER, period="2026-10", started_at=datetime(2026, 11, 1, tzinfo=UTC))


def test_free_and_paid_groups_after_a_mid_month_upgrade():
    bill = cycle_bill(
        Tier.FREE,
        tax_rate=Decimal("0.1"),
        usage=[
            usage(UsageKind.API_CALL, "0.001", 1_500),
            usage(UsageKind.API_CALL, "0", 1_000),
            usage(UsageKind.API_CALL, "0.001", 500),  # same group again: merged, rounded once
        ],
    )
    assert figures(bill) == [("base_fee", "0.00"), ("api_call", "0.00"), ("api_call", "2.00")]
    assert bill.lines[1].description == "API calls, not charged"
    assert bill.lines[2].quantity == 2_000
    assert (str(bill.subtotal), str(bill.tax), str(bill.total)) == ("2.00", "0.20", "2.20")


def test_enterprise_discount_is_its_own_line():
    bill = cycle_bill(
        Tier.ENTERPRISE,
        usage=[usage(UsageKind.API_CALL, "0.0005", 33_333)],  # 16.6665 -> 16.67
        overrides=ContractOverrides(usage_discount=Decimal("0.15")),
    )
    # 16.67 * 0.15 = 2.5005 -> 2.50
    assert figures(bill) == [("base_fee", "500.00"), ("api_call", "16.67"), ("discount", "-2.50")]
    assert bill.lines[2].description == "Contract discount, 15% of usage"
    assert str(bill.subtotal) == "514.17"


def test_discount_never_makes_a_bill_negative():
    full = ContractOverrides(usage_discount=Decimal(1))
    bill = cycle_bill(
        Tier.ENTERPRISE,
        tax_rate=Decimal("0.2"),
        usage=[usage(UsageKind.LLM_TOKENS, "0.00002", 12_345)],
        started_at=datetime(2026, 11, 30, 23, 59, 59, tzinfo=UTC),
        overrides=full,
    )
    # One second of a $500 month is 0.000193 -> 0.00; the whole usage is discounted away.
    assert figures(bill) == [("base_fee", "0.00"), ("llm_tokens", "0.25"), ("discount", "-0.25")]
    assert (str(bill.subtotal), str(bill.tax), str(bill.total)) == ("0.00", "0.00", "0.00")


def test_discount_is_enterprise_only():
    bill = cycle_bill(
        Tier.PROFESSIONAL,
        usage=[usage(UsageKind.API_CALL, "0.001", 1_000)],
        overrides=ContractOverrides(usage_discount=Decimal("0.5")),
    )
    assert "discount" not in [line.kind for line in bill.lines]


def test_jpy_rounds_to_whole_yen():
    yen = PriceCatalog(
        currency="JPY",
        plans={
            t: p.model_copy(update={"base_fee": p.base_fee * 150})
            for t, p in DEFAULT_CATALOG.plans.items()
        },
        unit_prices={
            UsageKind.API_CALL: Decimal("0.15"),
            UsageKind.LLM_TOKENS: Decimal("0.003"),
            UsageKind.AGENT_EXECUTION: Decimal("1.5"),
        },
    )
    bill = cycle_bill(
        Tier.STARTER,
        catalog=yen,
        tax_rate=Decimal("0.1"),
        usage=[usage(UsageKind.AGENT_EXECUTION, "1.5", 3)],  # 4.5 -> 5
    )
    assert figures(bill) == [("base_fee", "1500"), ("agent_execution", "5")]
    assert (str(bill.subtotal), str(bill.tax), str(bill.total)) == ("1505", "151", "1656")


@pytest.mark.parametrize("rate", ["-0.01", "1", "NaN"])
def test_tax_rate_must_be_a_fraction(rate):
    with pytest.raises(InvalidInput, match="tax rate"):
        cycle_bill(Tier.FREE, tax_rate=Decimal(rate))


def test_upgrade_bill_prorates_the_fee_difference():
    bill = upgrade_bill(
        Tier.FREE, Tier.STARTER, datetime(2026, 11, 15, tzinfo=UTC), tax_rate=Decimal("0.0825")
    )
    (line,) = bill.lines
    assert (bill.period, bill.tier) == ("2026-11", Tier.STARTER)
    assert line.description == "Upgrade free → starter, prorated 16 of 30 days"
    assert (line.kind, str(line.quantity), str(line.unit_price), str(line.amount)) == (
        "proration",
        "0.5333",
        "10.00",
        "5.33",
    )
    assert (str(bill.tax), str(bill.total)) == ("0.44", "5.77")


def test_upgrade_at_the_last_moment_is_a_zero_bill():
    bill = upgrade_bill(
        Tier.STARTER,
        Tier.ENTERPRISE,
        datetime(2026, 12, 1, tzinfo=UTC) - MICRO,
        tax_rate=Decimal("0.2"),
    )
    assert figures(bill) == [("proration", "0.00")]
    assert str(bill.total) == "0.00"


@pytest.mark.parametrize(
    ("low", "high"), [(Tier.STARTER, Tier.FREE), (Tier.PROFESSIONAL, Tier.PROFESSIONAL)]
)
def test_downgrades_and_same_tier_have_no_bill(low, high):
    with pytest.raises(InvalidInput, match="not an upgrade"):
        upgrade_bill(low, high, LONG_AGO)


def test_draft_refuses_figures_that_do_not_add_up():
    line = BillLine(
        kind="base_fee",
        description="x",
        quantity=Decimal(1),
        unit_price=Decimal(1),
        amount=Decimal("1.00"),
    )
    good = {"period": "2026-11", "tier": "starter", "currency": "USD", "lines": [line]}
    assert BillDraft(**good, subtotal=Decimal("1.00"), tax=Decimal("0.10"), total=Decimal("1.10"))
    for bad in [("1.01", "0.10", "1.11"), ("1.00", "0.10", "1.00"), ("1.00", "0.105", "1.105")]:
        with pytest.raises(ValidationError):
            BillDraft(**good, subtotal=Decimal(bad[0]), tax=Decimal(bad[1]), total=Decimal(bad[2]))
    with pytest.raises(ValidationError, match="line kind"):
        BillLine(
            kind="tip",
            description="x",
            quantity=Decimal(1),
            unit_price=Decimal(1),
            amount=Decimal(1),
        )
