"""Bill drafts: each line rounded once, tax rounded once on the rounded subtotal, totals add up."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from billing.catalog import ContractOverrides, PriceCatalog, Tier, UsageKind, is_upgrade
from billing.errors import InvalidInput
from billing.metering import line_amount
from billing.money import exact_mul, format_price, round_money
from billing.periods import (
    parse_period,
    period_bounds,
    period_of,
    remaining_days,
    remaining_fraction,
    subscribed_during,
)

LINE_KINDS = frozenset({"base_fee", "proration", "discount", *(k.value for k in UsageKind)})

# What a customer reads: label, and how many units a quoted price covers.
_USAGE_WORDS: dict[UsageKind, tuple[str, int, str]] = {
    UsageKind.API_CALL: ("API calls", 1, "each"),
    UsageKind.LLM_TOKENS: ("LLM tokens", 1000, "per 1,000"),
    UsageKind.AGENT_EXECUTION: ("Agent executions", 1, "each"),
}


class BillLine(BaseModel):
    """One line; `amount` is already rounded, the only rounding this line ever gets."""

    model_config = ConfigDict(frozen=True)

    kind: str
    description: str
    quantity: Decimal
    unit_price: Decimal
    amount: Decimal

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, value: str) -> str:
        if value not in LINE_KINDS:
            raise ValueError(f"line kind {value!r} is not one of {sorted(LINE_KINDS)}")
        return value


class BillDraft(BaseModel):
    """subtotal == sum of line amounts >= 0 and total == subtotal + tax, checked on build."""

    model_config = ConfigDict(frozen=True)

    period: str
    tier: Tier
    currency: str
    lines: tuple[BillLine, ...]
    subtotal: Decimal
    tax: Decimal
    total: Decimal

    @model_validator(mode="after")
    def _adds_up(self) -> BillDraft:
        parse_period(self.period)
        figures = [line.amount for line in self.lines] + [self.subtotal, self.tax, self.total]
        if any(round_money(f, self.currency) != f for f in figures):
            raise ValueError(f"bill figures must be rounded to {self.currency} minor units")
        if self.subtotal != sum((line.amount for line in self.lines), Decimal(0)):
            raise ValueError("subtotal is not the sum of the line amounts")
        if self.subtotal < 0 or self.tax < 0 or self.total != self.subtotal + self.tax:
            raise ValueError("total must be subtotal + tax, none negative")
        return self


class UsageAggregate(BaseModel):
    """Usage of one kind at one recorded unit price (an upgrade mid-period makes two groups)."""

    model_config = ConfigDict(frozen=True)

    kind: UsageKind
    unit_price: Decimal = Field(ge=0)
    quantity: int = Field(ge=0)


def _shown(value: Decimal, places: int) -> Decimal:
    """Display only (a quantity or a day count); no amount is ever derived from it."""
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def _days_text(period: str, at: datetime) -> str:
    left, total = remaining_days(period, at)
    return f"{_shown(left, 1).normalize():f} of {total} days"


def _check_tax(tax_rate: Decimal) -> None:
    if not tax_rate.is_finite() or not 0 <= tax_rate < 1:
        raise InvalidInput(f"tax rate is a fraction in [0, 1), not {tax_rate}")


def _draft(
    period: str, tier: Tier, currency: str, lines: list[BillLine], tax_rate: Decimal
) -> BillDraft:
    subtotal = sum((line.amount for line in lines), Decimal(0))
    tax = round_money(exact_mul(subtotal, tax_rate), currency)
    return BillDraft(
        period=period,
        tier=tier,
        currency=currency,
        lines=tuple(lines),
        subtotal=subtotal,
        tax=tax,
        total=subtotal + tax,
    )


def _usage_line(kind: UsageKind, unit_price: Decimal, quantity: int, currency: str) -> BillLine:
    label, per, unit = _USAGE_WORDS[kind]
    if unit_price == 0:
        description = f"{label}, not charged"
    else:
        description = f"{label} at {format_price(exact_mul(unit_price, per), currency)} {unit}"
    return BillLine(
        kind=kind.value,
        description=description,
        quantity=Decimal(quantity),
        unit_price=unit_price,
        amount=line_amount(quantity, unit_price, currency),
    )


def _usage_lines(usage: Sequence[UsageAggregate], currency: str) -> list[BillLine]:
    """One line per (kind, unit price), in a stable order; repeated groups are merged."""
    groups: dict[tuple[UsageKind, Decimal], int] = {}
    for agg in usage:
        key = (agg.kind, agg.unit_price)
        groups[key] = groups.get(key, 0) + agg.quantity
    order = list(UsageKind)
    keys = sorted(groups, key=lambda k: (order.index(k[0]), k[1]))
    return [_usage_line(kind, price, groups[(kind, price)], currency) for kind, price in keys]


def _discount_line(usage_subtotal: Decimal, discount: Decimal, currency: str) -> BillLine:
    # Never more than the usage it discounts, so the subtotal cannot go negative.
    amount = min(round_money(exact_mul(usage_subtotal, discount), currency), usage_subtotal)
    return BillLine(
        kind="discount",
        description=f"Contract discount, {_shown(discount * 100, 2).normalize():f}% of usage",
        quantity=discount,
        unit_price=-usage_subtotal,
        amount=-amount,
    )


def build_cycle_bill(
    *,
    catalog: PriceCatalog,
    period: str,
    tier: Tier,
    tax_rate: Decimal,
    usage: Sequence[UsageAggregate],
    started_at: datetime,
    overrides: ContractOverrides | None = None,
) -> BillDraft:
    """The month's bill: base fee (prorated from `started_at`), usage lines, discount, tax."""
    parse_period(period)
    _check_tax(tax_rate)
    currency = catalog.currency
    start, _ = period_bounds(period)
    if not subscribed_during(period, started_at):
        raise InvalidInput(f"period {period} ends before the subscription started")
    base_fee = catalog.base_fee(tier)
    fraction = remaining_fraction(period, started_at)  # exactly 1 when started by the start
    description = f"{tier.value.capitalize()} plan, {period}"
    if started_at > start:
        since = started_at.astimezone(UTC).date().isoformat()
        description += f", from {since} ({_days_text(period, started_at)})"
    base = BillLine(
        kind="base_fee",
        description=description,
        quantity=Decimal(1) if fraction == 1 else _shown(fraction, 4),
        unit_price=base_fee,
        amount=round_money(exact_mul(base_fee, fraction), currency),
    )
    lines = [base, *_usage_lines(usage, currency)]
    usage_subtotal = sum((line.amount for line in lines[1:]), Decimal(0))
    discount = overrides.usage_discount if overrides is not None else Decimal(0)
    if tier == Tier.ENTERPRISE and discount > 0 and usage_subtotal > 0:
        lines.append(_discount_line(usage_subtotal, discount, currency))
    return _draft(period, tier, currency, lines, tax_rate)


def build_upgrade_bill(
    *, catalog: PriceCatalog, from_tier: Tier, to_tier: Tier, at: datetime, tax_rate: Decimal
) -> BillDraft:
    """The base-fee difference for the rest of `at`'s period; downgrades issue no bill."""
    if not is_upgrade(from_tier, to_tier):
        raise InvalidInput(f"{from_tier.value} → {to_tier.value} is not an upgrade; it has no bill")
    _check_tax(tax_rate)
    currency = catalog.currency
    period = period_of(at)
    fraction = remaining_fraction(period, at)
    difference = catalog.base_fee(to_tier) - catalog.base_fee(from_tier)
    line = BillLine(
        kind="proration",
        description=f"Upgrade {from_tier.value} → {to_tier.value}, prorated "
        f"{_days_text(period, at)}",
        quantity=_shown(fraction, 4),
        unit_price=difference,
        amount=round_money(exact_mul(difference, fraction), currency),
    )
    return _draft(period, to_tier, currency, [line], tax_rate)
