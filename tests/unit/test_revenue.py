"""The revenue report always adds up: examples, every small ledger, random periods of bills."""

from __future__ import annotations

import itertools
import random
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from billing.errors import InvalidInput
from billing.revenue import (
    MONEY_FIELDS,
    BillFacts,
    Figures,
    bill_figures,
    revenue_report,
    success_rate,
)

PERIOD = "2026-10"
TIERS = ("free", "starter", "professional", "enterprise")


def bill(n: int = 0, **fields: object) -> BillFacts:
    values: dict[str, object] = {
        "bill_id": f"bill_{n}",
        "customer_id": f"cus_{n}",
        "period": PERIOD,
        "tier": "starter",
        "currency": "USD",
        "tax": Decimal("0.00"),
        "issued": Decimal("10.00"),
    }
    return BillFacts.model_validate(values | fields)


def adds_up(f: Figures) -> bool:
    return (
        f.net == f.collected - f.refunded
        and f.billed == f.collected + f.outstanding + f.written_off
        and f.outstanding >= 0
        and f.written_off >= 0
    )


def test_a_period_worked_by_hand():
    bills = [
        # paid, then 4.00 refunded
        bill(1, tier="starter", issued=Decimal("10.83"), tax=Decimal("0.83"),
             captured=Decimal("10.83"), refunded=Decimal("4.00"), failed_attempts=1,
             succeeded_attempts=1),
        # pending: nothing collected yet
        bill(2, tier="professional", issued=Decimal("50.00"), failed_attempts=2),
        # dunning exhausted: written off
        bill(3, tier="professional", issued=Decimal("54.13"), tax=Decimal("4.13"),
             written_off=Decimal("54.13"), failed_attempts=4),
        # a compensated upgrade: void, so out of every figure but the success rate
        bill(4, tier="enterprise", issued=Decimal("449.99"), voided=True, failed_attempts=1),
        bill(5, customer_id="cus_1", tier="enterprise", issued=Decimal("649.50"),
             tax=Decimal("49.50"), captured=Decimal("649.50"), succeeded_attempts=1),
    ]  # fmt: skip
    report = revenue_report(PERIOD, "USD", bills).to_json()
    assert report == {
        "period": PERIOD,
        "currency": "USD",
        "billed": "764.46",
        "collected": "660.33",
        "refunded": "4.00",
        "net": "656.33",
        "outstanding": "50.00",
        "written_off": "54.13",
        "tax": "54.46",
        "overpaid": "0.00",
        "overpayment_refunded": "0.00",
        "payment_success_rate": "0.2000",
        "customers": 3,
        "bills": 4,
        "by_tier": {
            "free": {"customers": 0, "bills": 0, "billed": "0.00", "collected": "0.00",
                     "refunded": "0.00", "net": "0.00", "outstanding": "0.00",
                     "written_off": "0.00", "tax": "0.00"},
            "starter": {"customers": 1, "bills": 1, "billed": "10.83", "collected": "10.83",
                        "refunded": "4.00", "net": "6.83", "outstanding": "0.00",
                        "written_off": "0.00", "tax": "0.83"},
            "professional": {"customers": 2, "bills": 2, "billed": "104.13",
                             "collected": "0.00", "refunded": "0.00", "net": "0.00",
                             "outstanding": "50.00", "written_off": "54.13", "tax": "4.13"},
            "enterprise": {"customers": 1, "bills": 1, "billed": "649.50",
                           "collected": "649.50", "refunded": "0.00", "net": "649.50",
                           "outstanding": "0.00", "written_off": "0.00", "tax": "49.50"},
        },
    }  # fmt: skip


def test_an_empty_period_is_all_zeros_with_no_success_rate():
    report = revenue_report(PERIOD, "USD", []).to_json()
    assert report["billed"] == report["net"] == "0.00"
    assert report["payment_success_rate"] is None
    assert list(report["by_tier"]) == list(TIERS)  # type: ignore[call-overload]


def test_a_write_off_recovered_later_is_no_longer_written_off():
    # Uncollectible, then paid with a new card: the ledger keeps both entries.
    figures = bill_figures(bill(written_off=Decimal("10.00"), captured=Decimal("10.00")))
    assert figures is not None
    assert (figures.collected, figures.written_off, figures.outstanding) == (
        Decimal("10.00"),
        Decimal("0.00"),
        Decimal("0.00"),
    )
    partly = bill_figures(bill(written_off=Decimal("10.00"), captured=Decimal("3.00")))
    assert partly is not None
    assert (partly.written_off, partly.outstanding) == (Decimal("7.00"), Decimal("0.00"))


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"captured": Decimal("2.00"), "refunded": Decimal("3.00")}, "more than the"),
        ({"period": "2026-09"}, "not 2026-10"),
        ({"currency": "EUR"}, "the report in USD"),
    ],
)
def test_impossible_or_foreign_bills_are_refused(fields, problem):
    with pytest.raises(ValueError, match=problem):
        revenue_report(PERIOD, "USD", [bill(**fields)])


def test_an_overpayment_and_its_refund_are_a_wash():
    twice = bill(captured=Decimal("20.00"), refunded=Decimal("10.00"))
    figures = bill_figures(twice)
    assert figures is not None
    assert (figures.collected, figures.refunded, figures.net, figures.outstanding) == (
        Decimal("10.00"),
        Decimal("0.00"),
        Decimal("10.00"),
        Decimal("0.00"),
    )
    assert (figures.overpaid, figures.overpayment_refunded) == (Decimal("10.00"), Decimal("10.00"))
    # Money received after a void is refunded whole and leaves the report alone.
    assert bill_figures(bill(captured=Decimal("1.00"), voided=True)) is None


def test_bad_period_is_refused():
    with pytest.raises(InvalidInput, match="not YYYY-MM"):
        revenue_report("2026-13x", "USD", [])


@pytest.mark.parametrize(
    ("succeeded", "failed", "rate"),
    [(0, 0, None), (1, 0, "1.0000"), (0, 3, "0.0000"), (19, 1, "0.9500"), (1, 2, "0.3333"),
     (2, 1, "0.6667"), (1, 7, "0.1250")],
)  # fmt: skip
def test_success_rate(succeeded, failed, rate):
    got = success_rate(succeeded, failed)
    assert (None if got is None else f"{got:f}") == rate


AMOUNTS = [Decimal("0.00"), Decimal("0.01"), Decimal("5.00"), Decimal("9.99"), Decimal("10.00")]


def test_every_small_ledger_adds_up_or_is_refused():
    """Every combination of sums on a 10.00 bill: legal ones add up, the rest raise."""
    legal = 0
    for captured, refunded, written_off, voided in itertools.product(
        AMOUNTS, AMOUNTS, AMOUNTS, (False, True)
    ):
        one = bill(captured=captured, refunded=refunded, written_off=written_off, voided=voided)
        # Money beyond the total (paid twice, paid after a void) is possible: it is excess.
        possible = refunded <= captured
        if not possible:
            with pytest.raises(ValueError, match="more than"):
                bill_figures(one)
            continue
        legal += 1
        figures = bill_figures(one)
        if voided:
            assert figures is None
            continue
        assert figures is not None
        assert adds_up(figures)
        assert figures.written_off <= written_off
    assert legal > 50


CENTS = st.integers(min_value=0, max_value=200_000).map(lambda c: Decimal(c).scaleb(-2))


@st.composite
def legal_bill(draw: st.DrawFn, n: int) -> BillFacts:
    """A ledger the sagas can produce, including a write-off that a later payment recovered."""
    issued = draw(CENTS)
    tax_cents = draw(st.integers(0, int(issued * 100)))
    voided = draw(st.booleans()) and draw(st.booleans())
    captured = Decimal("0.00") if voided else draw(st.sampled_from([Decimal("0.00"), issued]))
    if not voided and draw(st.booleans()):
        captured = Decimal(draw(st.integers(0, int(issued * 100)))).scaleb(-2)
    refunded = Decimal(draw(st.integers(0, int(captured * 100)))).scaleb(-2)
    written_off = Decimal("0.00")
    if not voided and draw(st.booleans()):
        # Written off what was due then; a payment afterwards may have recovered some.
        written_off = issued - Decimal(draw(st.integers(0, int(captured * 100)))).scaleb(-2)
    return bill(
        n,
        customer_id=f"cus_{draw(st.integers(0, 5))}",
        tier=draw(st.sampled_from(TIERS)),
        issued=issued,
        tax=Decimal(tax_cents).scaleb(-2),
        captured=captured,
        refunded=refunded,
        written_off=written_off,
        voided=voided,
        succeeded_attempts=draw(st.integers(0, 3)),
        failed_attempts=draw(st.integers(0, 3)),
    )


@st.composite
def periods_of_bills(draw: st.DrawFn) -> list[BillFacts]:
    return [draw(legal_bill(n)) for n in range(draw(st.integers(0, 25)))]


@settings(max_examples=300, deadline=None)
@given(periods_of_bills(), st.randoms(use_true_random=False))
def test_a_report_always_adds_up(bills: list[BillFacts], rnd: random.Random):
    report = revenue_report(PERIOD, "USD", bills)
    counted = [b for b in bills if not b.voided]
    total = report.figures
    assert adds_up(total)
    for name in MONEY_FIELDS:
        by_tier = sum((getattr(t.figures, name) for t in report.by_tier.values()), Decimal(0))
        assert by_tier == getattr(total, name), name
    for each in report.by_tier.values():
        assert adds_up(each.figures)
    # The figures are the ledger's own sums, void bills left out.
    assert total.billed == sum((b.issued for b in counted), Decimal(0))
    assert total.collected == sum((b.captured for b in counted), Decimal(0))
    assert total.refunded == sum((b.refunded for b in counted), Decimal(0))
    assert total.tax == sum((b.tax for b in counted), Decimal(0))
    assert report.bills == len(counted)
    assert report.customers == len({b.customer_id for b in counted})
    for name, figures in report.by_tier.items():
        assert figures.customers == len({b.customer_id for b in counted if b.tier == name})
    # The success rate counts every attempt, a void bill's failed charge included.
    assert report.payment_success_rate == success_rate(
        sum(b.succeeded_attempts for b in bills), sum(b.failed_attempts for b in bills)
    )
    # Order does not matter, and the JSON spelling is exact to the cent.
    shuffled = list(bills)
    rnd.shuffle(shuffled)
    assert revenue_report(PERIOD, "USD", shuffled) == report
    as_json = report.to_json()
    for name in MONEY_FIELDS:
        text = as_json[name]
        assert isinstance(text, str)
        assert Decimal(text) == getattr(total, name)
        assert len(text.split(".")[1]) == 2
