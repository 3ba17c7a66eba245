"""Money parsing, rounding and formatting: exact, half-up, one grid per currency."""

from __future__ import annotations

import math
from decimal import Decimal, Inexact
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing.errors import InvalidInput
from billing.money import (
    MINOR_UNITS,
    exact_mul,
    format_money,
    format_price,
    minor_unit,
    parse_money,
    round_money,
)


def ref_round(value: Fraction, places: int = 2) -> Fraction:
    """Half-up (away from zero) on exact fractions: the reference the code is checked against."""
    scale = 10**places
    magnitude = Fraction(math.floor(abs(value) * scale + Fraction(1, 2)), scale)
    return magnitude if value >= 0 else -magnitude


def test_minor_units():
    assert MINOR_UNITS == {"USD": 2, "EUR": 2, "GBP": 2, "JPY": 0}
    assert minor_unit("JPY") == 0
    with pytest.raises(InvalidInput, match="unknown currency 'XXX'"):
        minor_unit("XXX")


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [
        ("0.005", "USD", "0.01"),
        ("0.004999", "USD", "0.00"),
        ("2.675", "USD", "2.68"),
        ("-0.005", "USD", "-0.01"),
        ("1.5", "JPY", "2"),
        ("2.5", "JPY", "3"),
        ("12", "EUR", "12.00"),
        ("123456789012345678.994", "USD", "123456789012345678.99"),
    ],
)
def test_round_money_is_half_up(amount, currency, expected):
    assert str(round_money(Decimal(amount), currency)) == expected


def test_round_money_refuses_non_finite():
    with pytest.raises(InvalidInput):
        round_money(Decimal("NaN"), "USD")


@given(st.integers(min_value=-(10**15), max_value=10**15), st.integers(min_value=0, max_value=8))
def test_round_money_matches_exact_reference(digits, places):
    rounded = round_money(Decimal(digits).scaleb(-places), "USD")
    assert rounded.as_tuple().exponent == -2
    assert Fraction(rounded) == ref_round(Fraction(digits, 10**places))


@pytest.mark.parametrize(
    ("given_", "currency", "expected"),
    [
        ("590", "USD", "590.00"),
        ("590.5", "USD", "590.50"),
        ("0.01", "USD", "0.01"),
        ("10.000", "USD", "10.00"),
        ("-0", "USD", "0.00"),
        (7, "USD", "7.00"),
        (Decimal("3.10"), "EUR", "3.10"),
        ("1200", "JPY", "1200"),
    ],
)
def test_parse_money_accepts(given_, currency, expected):
    assert str(parse_money(given_, currency)) == expected


@pytest.mark.parametrize(
    ("given_", "currency", "message"),
    [
        (1.5, "USD", "float"),
        (True, "USD", "not a number"),
        ("NaN", "USD", "not a plain decimal"),
        ("Infinity", "USD", "not a plain decimal"),
        (Decimal("NaN"), "USD", "not a finite"),
        (Decimal("-Infinity"), "USD", "not a finite"),
        ("-1.00", "USD", "negative"),
        (-3, "USD", "negative"),
        ("1.005", "USD", "more than 2 decimals for USD"),
        ("1.5", "JPY", "more than 0 decimals for JPY"),
        ("1e3", "USD", "not a plain decimal"),
        ("1_000", "USD", "not a plain decimal"),
        (" 12", "USD", "not a plain decimal"),
        ("", "USD", "not a plain decimal"),
        ("１２", "USD", "not a plain decimal"),
        ("1" * 19, "USD", "too large"),
        ("1.00", "XYZ", "unknown currency"),
    ],
)
def test_parse_money_refuses(given_, currency, message):
    with pytest.raises(InvalidInput, match=message):
        parse_money(given_, currency)


@given(st.integers(min_value=0, max_value=10**18 - 1))
def test_parse_format_round_trip(cents):
    amount = Decimal(cents).scaleb(-2)
    text = format_money(amount, "USD")
    assert parse_money(text, "USD") == amount
    assert format_money(parse_money(text, "USD"), "USD") == text


def test_format_money():
    assert format_money(Decimal("590"), "USD") == "590.00"
    assert format_money(Decimal("-10.5"), "USD") == "-10.50"
    assert format_money(Decimal("-0.00"), "USD") == "0.00"
    assert format_money(Decimal("1E+3"), "USD") == "1000.00"
    assert format_money(Decimal("1500"), "JPY") == "1500"
    with pytest.raises(ValueError, match="round_money it first"):
        format_money(Decimal("0.001"), "USD")


@pytest.mark.parametrize(
    ("price", "currency", "expected"),
    [
        ("0.001", "USD", "$0.001"),
        ("0.020", "USD", "$0.02"),
        ("10", "USD", "$10.00"),
        ("0.0123", "EUR", "€0.0123"),
        ("5", "JPY", "¥5"),
    ],
)
def test_format_price(price, currency, expected):
    assert format_price(Decimal(price), currency) == expected


def test_exact_mul_keeps_every_digit():
    assert str(exact_mul(10**18, Decimal("0.0000000001"))) == "100000000.0000000000"
    a, b = Decimal("1." + "3" * 40), Decimal("1." + "7" * 40)
    assert Fraction(exact_mul(a, b)) == Fraction(a) * Fraction(b)  # 82 digits, none lost
    with pytest.raises(Inexact):
        exact_mul(Decimal("1." + "3" * 60), Decimal("1." + "7" * 60))
