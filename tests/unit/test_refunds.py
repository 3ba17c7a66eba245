"""Refund limits: never above paid - refunded - reserved, whatever the order of requests."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from billing.errors import InvalidInput, RefundRefused
from billing.ledger import EntryKind, LedgerEntry, bill_state
from billing.refunds import check_refund_request, refund_amount


def grant(
    requested: str | None, paid="100.00", refunded="0.00", reserved="0.00", currency="USD"
) -> Decimal:
    return refund_amount(
        requested=None if requested is None else Decimal(requested),
        paid=Decimal(paid),
        refunded=Decimal(refunded),
        reserved=Decimal(reserved),
        currency=currency,
    )


def test_grants():
    assert str(grant(None)) == "100.00"
    assert str(grant(None, refunded="30.00", reserved="20.50")) == "49.50"
    assert str(grant("49.50", refunded="30.00", reserved="20.50")) == "49.50"
    assert str(grant("5")) == "5.00"
    assert str(grant("0.01")) == "0.01"
    assert str(grant("700", paid="700", currency="JPY")) == "700"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"requested": None, "paid": "0.00"}, "nothing was paid"),
        ({"requested": "1.00", "paid": "0.00"}, "nothing was paid"),
        (
            {"requested": None, "refunded": "60.00", "reserved": "40.00"},
            "nothing is left to refund",
        ),
        ({"requested": "0.00"}, "positive amount"),
        ({"requested": "-5.00"}, "positive amount"),
        ({"requested": "NaN"}, "positive amount"),
        ({"requested": "1.001"}, "more than 2 decimals for USD"),
        ({"requested": "100.01"}, r"refund 100.01 USD is above the 100.00 still refundable"),
        (
            {"requested": "50.01", "refunded": "30.00", "reserved": "20.00"},
            r"above the 50.00 still refundable "
            r"\(paid 100.00, refunded 30.00, reserved by refunds in flight 20.00\)",
        ),
    ],
)
def test_refusals_say_why(kwargs, message):
    with pytest.raises(RefundRefused, match=message):
        grant(**kwargs)


def test_ledger_figures_must_be_amounts():
    with pytest.raises(ValueError, match="paid 1.005"):
        grant(None, paid="1.005")
    with pytest.raises(ValueError, match="refunded -1.00"):
        grant(None, refunded="-1.00")


REQUESTS = st.lists(st.one_of(st.none(), st.integers(-100, 20_000)), max_size=15)


@settings(max_examples=300)
@given(paid_cents=st.integers(0, 10_000), requests=REQUESTS, fail_every=st.integers(2, 5))
def test_granted_refunds_never_exceed_paid(paid_cents, requests, fail_every):
    """Requests in order; some reserved refunds fail at the gateway and release their hold."""
    paid = Decimal(paid_cents).scaleb(-2)
    refunded = reserved = Decimal("0.00")
    in_flight: list[Decimal] = []
    for i, cents in enumerate(requests):
        requested = None if cents is None else Decimal(cents).scaleb(-2)
        try:
            granted = refund_amount(
                requested=requested, paid=paid, refunded=refunded, reserved=reserved, currency="USD"
            )
        except RefundRefused:
            available = paid - refunded - reserved
            assert (
                paid == 0
                or available <= 0
                or (requested is not None and not 0 < requested <= available)
            )
            continue
        assert granted > 0
        assert granted == (paid - refunded - reserved if requested is None else requested)
        reserved += granted
        in_flight.append(granted)
        assert refunded + reserved <= paid
        if i % 2:  # settle the oldest refund in flight: it succeeds or its hold is released
            done = in_flight.pop(0)
            reserved -= done
            if i % fail_every:
                refunded += done
    assert refunded + sum(in_flight) <= paid


def paid_bill(captured: str, refunded: str = "0.00"):
    entries = [LedgerEntry(kind=EntryKind.CAPTURED, amount=Decimal(captured))]
    if Decimal(refunded):
        entries.append(LedgerEntry(kind=EntryKind.REFUNDED, amount=Decimal(refunded)))
    return bill_state(Decimal("10.00"), entries)


def test_a_request_is_checked_against_the_bill_before_a_saga_starts():
    state = paid_bill("10.00", refunded="4.00")
    assert check_refund_request(None, state, "USD") is None  # all that is refundable
    assert str(check_refund_request(Decimal("6"), state, "USD")) == "6.00"
    with pytest.raises(RefundRefused, match="above the 6.00 still refundable"):
        check_refund_request(Decimal("7.00"), state, "USD")
    with pytest.raises(RefundRefused, match="nothing is left to refund"):
        check_refund_request(None, paid_bill("10.00", refunded="10.00"), "USD")
    with pytest.raises(RefundRefused, match="nothing was paid"):
        check_refund_request(Decimal("1.00"), paid_bill("0.00"), "USD")


@pytest.mark.parametrize(
    ("amount", "message"),
    [("0.00", "amount: must be above zero"), ("-1.00", "amount: amount -1.00 is negative"),
     ("1.001", "amount: amount 1.001 has more than 2 decimals"), ("NaN", "amount: amount NaN")],
)  # fmt: skip
def test_a_malformed_amount_is_bad_input_not_a_refusal(amount, message):
    with pytest.raises(InvalidInput, match=message):
        check_refund_request(Decimal(amount), paid_bill("10.00"), "USD")
