"""The revenue report: one pure function from per-bill ledger sums to figures that add up.

For every report and every tier: net == collected - refunded and
billed == collected + outstanding + written_off, outstanding >= 0; the tier figures
sum to the totals. A report covers the bills of one billing period; void bills are
left out of every figure except the payment success rate (a charge that failed and
was compensated by voiding its bill still failed).
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import ROUND_HALF_UP, Decimal

from pydantic import BaseModel, ConfigDict, Field

from billing.catalog import TIER_ORDER
from billing.ledger import BillStatus, EntryKind, state_from_totals
from billing.money import format_money, round_money
from billing.periods import parse_period

_RATE_QUANTUM = Decimal("0.0001")
MONEY_FIELDS = ("billed", "collected", "refunded", "net", "outstanding", "written_off", "tax")
# Money received beyond what bills asked (paid twice), and what of it went back: reported
# apart (in the totals), since it was never revenue.
OVERPAYMENT_FIELDS = ("overpaid", "overpayment_refunded")


class BillFacts(BaseModel):
    """One bill as its ledger entries sum up, by kind; `voided` if a voided entry exists.

    `written_off` is what was written off, before any reversal (`write_off_reversed`).
    """

    model_config = ConfigDict(frozen=True)

    bill_id: str
    customer_id: str
    period: str
    tier: str
    currency: str
    tax: Decimal
    issued: Decimal
    captured: Decimal = Decimal(0)
    refunded: Decimal = Decimal(0)
    written_off: Decimal = Decimal(0)
    write_off_reversed: Decimal = Decimal(0)
    voided: bool = False
    succeeded_attempts: int = Field(default=0, ge=0)
    failed_attempts: int = Field(default=0, ge=0)

    def ledger_totals(self) -> dict[EntryKind, Decimal]:
        """The sums as `billing.ledger.state_from_totals` reads them (a kind present: an
        entry of it exists; a sum of 0.00 stands for none, but a void has no amount)."""
        totals = {
            EntryKind.CAPTURED: self.captured,
            EntryKind.REFUNDED: self.refunded,
            EntryKind.WRITTEN_OFF: self.written_off,
            EntryKind.WRITE_OFF_REVERSED: self.write_off_reversed,
        }
        if self.voided:
            totals[EntryKind.VOIDED] = Decimal(0)
        return totals


class Figures(BaseModel):
    """Exact amounts; the invariants of the module docstring hold for every instance built here."""

    model_config = ConfigDict(frozen=True)

    billed: Decimal = Decimal(0)
    collected: Decimal = Decimal(0)
    refunded: Decimal = Decimal(0)
    net: Decimal = Decimal(0)
    outstanding: Decimal = Decimal(0)
    written_off: Decimal = Decimal(0)
    tax: Decimal = Decimal(0)
    overpaid: Decimal = Decimal(0)
    overpayment_refunded: Decimal = Decimal(0)

    def __add__(self, other: Figures) -> Figures:
        fields = MONEY_FIELDS + OVERPAYMENT_FIELDS
        return Figures(**{f: getattr(self, f) + getattr(other, f) for f in fields})


class TierFigures(BaseModel):
    model_config = ConfigDict(frozen=True)

    customers: int
    bills: int
    figures: Figures


class RevenueReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    period: str
    currency: str
    customers: int
    bills: int
    figures: Figures
    payment_success_rate: Decimal | None
    by_tier: dict[str, TierFigures]

    def to_json(self) -> dict[str, object]:
        """The contract's shape: money as decimal strings, the rate with 4 places or null."""

        def money(figures: Figures, fields: tuple[str, ...] = MONEY_FIELDS) -> dict[str, str]:
            return {f: format_money(getattr(figures, f), self.currency) for f in fields}

        rate = self.payment_success_rate
        return {
            "period": self.period,
            "currency": self.currency,
            **money(self.figures),
            **money(self.figures, OVERPAYMENT_FIELDS),
            "payment_success_rate": None if rate is None else f"{rate:f}",
            "customers": self.customers,
            "bills": self.bills,
            "by_tier": {
                tier: {"customers": t.customers, "bills": t.bills, **money(t.figures)}
                for tier, t in self.by_tier.items()
            },
        }


def bill_figures(bill: BillFacts) -> Figures | None:
    """One bill's figures, or None for a void bill; an impossible ledger raises ValueError."""
    state = state_from_totals(bill.issued, bill.ledger_totals())  # validates: refunded <= paid
    if state.status == BillStatus.VOID:
        return None
    # An overpayment and its refund are a wash, not revenue: both leave the figures, so
    # collected never exceeds billed and the sums still close while the refund runs.
    overpaid = max(state.amount_paid - state.total, Decimal(0))
    returned = min(state.amount_refunded, overpaid)
    collected, refunded = state.amount_paid - overpaid, state.amount_refunded - returned
    # A write-off that a later payment recovered is no longer written off: only what is
    # still unpaid can be, so outstanding never goes negative and the sums still close.
    written_off = min(state.written_off, state.total - collected)
    return Figures(
        billed=state.total,
        collected=collected,
        refunded=refunded,
        net=collected - refunded,
        outstanding=state.total - collected - written_off,
        written_off=written_off,
        tax=bill.tax,
        overpaid=overpaid,
        overpayment_refunded=returned,
    )


def success_rate(succeeded: int, failed: int) -> Decimal | None:
    """succeeded / (succeeded + failed), 4 places ROUND_HALF_UP; None when nothing was tried."""
    tried = succeeded + failed
    if tried == 0:
        return None
    return (Decimal(succeeded) / Decimal(tried)).quantize(_RATE_QUANTUM, rounding=ROUND_HALF_UP)


def revenue_report(period: str, currency: str, bills: Iterable[BillFacts]) -> RevenueReport:
    """The report of `period` from its bills; every tier of the catalog is listed, even at 0."""
    parse_period(period)
    zero = round_money(Decimal(0), currency)
    empty = Figures(**dict.fromkeys(MONEY_FIELDS + OVERPAYMENT_FIELDS, zero))
    totals = empty
    tiers: dict[str, Figures] = {t.value: empty for t in TIER_ORDER}
    tier_customers: dict[str, set[str]] = {t.value: set() for t in TIER_ORDER}
    tier_bills: dict[str, int] = dict.fromkeys(tiers, 0)
    customers: set[str] = set()
    succeeded = failed = 0
    for bill in bills:
        if bill.period != period:
            raise ValueError(f"bill {bill.bill_id} is of {bill.period}, not {period}")
        if bill.currency != currency:
            raise ValueError(f"bill {bill.bill_id} is in {bill.currency}, the report in {currency}")
        succeeded += bill.succeeded_attempts
        failed += bill.failed_attempts
        figures = bill_figures(bill)
        if figures is None:
            continue
        totals += figures
        tiers[bill.tier] = tiers.get(bill.tier, empty) + figures
        tier_customers.setdefault(bill.tier, set()).add(bill.customer_id)
        tier_bills[bill.tier] = tier_bills.get(bill.tier, 0) + 1
        customers.add(bill.customer_id)
    return RevenueReport(
        period=period,
        currency=currency,
        customers=len(customers),
        bills=sum(tier_bills.values()),
        figures=totals,
        payment_success_rate=success_rate(succeeded, failed),
        by_tier={
            tier: TierFigures(
                customers=len(tier_customers[tier]), bills=tier_bills[tier], figures=figures
            )
            for tier, figures in tiers.items()
        },
    )
