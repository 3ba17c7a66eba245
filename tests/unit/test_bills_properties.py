"""Bill properties: every figure equals a reference computed with exact fractions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from billing.bills import BillDraft, UsageAggregate, build_cycle_bill, build_upgrade_bill
from billing.catalog import (
    DEFAULT_CATALOG,
    TIER_ORDER,
    ContractOverrides,
    Tier,
    UsageKind,
    is_upgrade,
)
from billing.periods import period_bounds
from tests.unit.test_money import ref_round

MICRO = timedelta(microseconds=1)


PRICES = st.builds(lambda n, k: Decimal(n).scaleb(-k), st.integers(0, 10**8), st.integers(0, 10))
GROUPS = st.lists(
    st.builds(
        UsageAggregate,
        kind=st.sampled_from(list(UsageKind)),
        unit_price=PRICES,
        quantity=st.integers(0, 10**12),
    ),
    max_size=6,
)
FRACTIONS_6 = st.builds(lambda n: Decimal(n).scaleb(-6), st.integers(0, 999_999))
FRACTIONS_4 = st.builds(lambda n: Decimal(n).scaleb(-4), st.integers(0, 10_000))


@st.composite
def started_ats(draw: st.DrawFn, period: str) -> datetime:
    start, end = period_bounds(period)
    if draw(st.booleans()):
        return start - timedelta(days=draw(st.integers(0, 4000)))
    return start + MICRO * draw(st.integers(0, (end - start) // MICRO - 1))


def exact_fraction(period: str, at: datetime) -> Fraction:
    start, end = period_bounds(period)
    if at <= start:
        return Fraction(1)
    return Fraction((end - at) // MICRO, (end - start) // MICRO)


def assert_adds_up(bill: BillDraft) -> None:
    for figure in [*(line.amount for line in bill.lines), bill.subtotal, bill.tax, bill.total]:
        assert figure.as_tuple().exponent == -2, figure
    assert bill.subtotal == sum(line.amount for line in bill.lines)
    assert bill.total == bill.subtotal + bill.tax
    assert bill.subtotal >= 0


@settings(max_examples=300)
@given(
    tier=st.sampled_from(list(Tier)),
    period=st.sampled_from(["2024-02", "2026-11", "2026-12", "2027-01"]),
    data=st.data(),
    groups=GROUPS,
    tax_rate=FRACTIONS_6,
    discount=FRACTIONS_4,
)
def test_cycle_bill_matches_exact_reference(tier, period, data, groups, tax_rate, discount):
    started_at = data.draw(started_ats(period))
    bill = build_cycle_bill(
        catalog=DEFAULT_CATALOG,
        period=period,
        tier=tier,
        tax_rate=tax_rate,
        usage=groups,
        started_at=started_at,
        overrides=ContractOverrides(usage_discount=discount),
    )
    assert_adds_up(bill)
    merged: dict[tuple[UsageKind, Decimal], int] = {}
    for g in groups:
        merged[(g.kind, g.unit_price)] = merged.get((g.kind, g.unit_price), 0) + g.quantity
    base = ref_round(Fraction(DEFAULT_CATALOG.base_fee(tier)) * exact_fraction(period, started_at))
    # Lines come in kind order, then price order: one line per (kind, price) group.
    kinds = list(UsageKind)
    keys = sorted(merged, key=lambda key: (kinds.index(key[0]), key[1]))
    usage_amounts = [ref_round(merged[key] * Fraction(key[1])) for key in keys]
    expected = [base, *usage_amounts]
    usage_total = sum(usage_amounts, Fraction(0))
    if tier is Tier.ENTERPRISE and discount > 0 and usage_total > 0:
        expected.append(-ref_round(usage_total * Fraction(discount)))
    assert [Fraction(line.amount) for line in bill.lines] == expected
    assert [(line.kind, line.unit_price) for line in bill.lines[1 : 1 + len(keys)]] == [
        (kind.value, price) for kind, price in keys
    ]
    subtotal = sum(expected, Fraction(0))
    assert Fraction(bill.subtotal) == subtotal
    assert Fraction(bill.tax) == ref_round(subtotal * Fraction(tax_rate))


@settings(max_examples=300)
@given(
    pair=st.sampled_from([(a, b) for a in TIER_ORDER for b in TIER_ORDER if is_upgrade(a, b)]),
    at=st.integers(0, 366 * 24 * 3600 * 10**6 - 1),
    tax_rate=FRACTIONS_6,
)
def test_proration_is_within_zero_and_the_fee_difference(pair, at, tax_rate):
    from_tier, to_tier = pair
    when = datetime(2028, 1, 1, tzinfo=UTC) + MICRO * at
    bill = build_upgrade_bill(
        catalog=DEFAULT_CATALOG, from_tier=from_tier, to_tier=to_tier, at=when, tax_rate=tax_rate
    )
    assert_adds_up(bill)
    difference = DEFAULT_CATALOG.base_fee(to_tier) - DEFAULT_CATALOG.base_fee(from_tier)
    (line,) = bill.lines
    assert 0 <= line.amount <= difference
    assert Fraction(line.amount) == ref_round(
        Fraction(difference) * exact_fraction(bill.period, when)
    )
    assert Fraction(bill.tax) == ref_round(Fraction(line.amount) * Fraction(tax_rate))
