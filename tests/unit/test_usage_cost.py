"""Usage cost computed one way: the usage totals and the bill's usage lines agree to the cent.

`GET /v1/customers/{id}/usage` answers `kind_totals` over the period's (kind, unit price,
quantity) groups; the cycle bill builds one line per (kind, unit price) from the same
groups, each amount by `line_amount`. Events are priced here as the ingest path prices them
(`pricing_tier`, then the catalog's unit price), across mid-period tier changes.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from billing.bills import UsageAggregate, build_cycle_bill
from billing.catalog import DEFAULT_CATALOG, ContractOverrides, Tier, UsageKind
from billing.metering import TierChange, kind_totals, plan_for, pricing_tier

PERIOD = "2026-10"
START = datetime(2026, 10, 1, tzinfo=UTC)
HOURS = 31 * 24

prices = st.integers(0, 10**7).map(lambda n: Decimal(n).scaleb(-10))  # numeric(20, 10)
contracts = st.one_of(
    st.none(),
    st.dictionaries(st.sampled_from(UsageKind), prices, max_size=3).map(
        lambda unit_prices: ContractOverrides(unit_prices=unit_prices)
    ),
)
changes = st.lists(st.tuples(st.integers(1, HOURS - 1), st.sampled_from(Tier)), max_size=4)
events = st.lists(
    st.tuples(st.sampled_from(UsageKind), st.integers(1, 10**6), st.integers(0, HOURS - 1)),
    min_size=1,
    max_size=40,
)


def history(first: Tier, steps: list[tuple[int, Tier]]) -> list[TierChange]:
    out = [TierChange(START, first, first)]
    for hour, tier in sorted(steps):
        out.append(TierChange(START + timedelta(hours=hour), out[-1].to_tier, tier))
    return out


def stored_groups(
    changes_: list[TierChange],
    contract: ContractOverrides | None,
    usage: list[tuple[UsageKind, int, int]],
) -> list[tuple[UsageKind, Decimal, int]]:
    """(kind, unit price, quantity) as `usage_events` groups them, priced as ingested."""
    plan = plan_for(
        DEFAULT_CATALOG,
        customer_id="cus_1",
        tier=changes_[-1].to_tier,
        overrides=contract or ContractOverrides(),
        started_at=START,
        tier_since=changes_[-1].effective_at,
        auto_upgrade=False,
        has_payment_method=False,
        active=True,
    )
    sums: dict[tuple[UsageKind, Decimal], int] = defaultdict(int)
    for kind, quantity, hour in usage:
        at = START + timedelta(hours=hour)
        tier = pricing_tier(plan, at, True, changes_)
        sums[kind, DEFAULT_CATALOG.unit_price(tier, kind, plan.overrides)] += quantity
    return [(kind, price, quantity) for (kind, price), quantity in sums.items()]


def bill_by_kind(
    groups: list[tuple[UsageKind, Decimal, int]], tier: Tier, contract: ContractOverrides | None
) -> dict[UsageKind, tuple[int, Decimal]]:
    bill = build_cycle_bill(
        catalog=DEFAULT_CATALOG,
        period=PERIOD,
        tier=tier,
        tax_rate=Decimal("0.0825"),
        usage=[UsageAggregate(kind=k, unit_price=p, quantity=q) for k, p, q in groups],
        started_at=START,
        overrides=contract,
    )
    out: dict[UsageKind, tuple[int, Decimal]] = {}
    for line in bill.lines:
        if line.kind in set(UsageKind):
            kind = UsageKind(line.kind)
            quantity, amount = out.get(kind, (0, Decimal(0)))
            out[kind] = (quantity + int(line.quantity), amount + line.amount)
    return out


@given(st.sampled_from(Tier), changes, contracts, events)
def test_usage_totals_and_bill_lines_agree_to_the_cent(first, steps, contract, usage):
    changes_ = history(first, steps)
    groups = stored_groups(changes_, contract, usage)
    assert kind_totals(groups, "USD") == bill_by_kind(groups, changes_[-1].to_tier, contract)


def test_a_contract_price_until_mid_period_makes_two_lines_each_rounded_once():
    """Enterprise at 0.00003 a token until the 11th, starter (0.00002) after: 250 tokens in
    each half cost 0.0075 -> 0.01 and 0.005 -> 0.01. Two lines, 0.02, where rounding the
    kind's summed cost once (0.0125) would have said 0.01."""
    contract = ContractOverrides(unit_prices={UsageKind.LLM_TOKENS: Decimal("0.00003")})
    changes_ = history(Tier.ENTERPRISE, [(240, Tier.STARTER)])
    usage = [(UsageKind.LLM_TOKENS, 250, 10), (UsageKind.LLM_TOKENS, 250, 300)]
    groups = stored_groups(changes_, contract, usage)
    assert sorted(p for _, p, _ in groups) == [Decimal("0.00002"), Decimal("0.00003")]
    expected = {UsageKind.LLM_TOKENS: (500, Decimal("0.02"))}
    assert kind_totals(groups, "USD") == expected
    assert bill_by_kind(groups, Tier.STARTER, contract) == expected
