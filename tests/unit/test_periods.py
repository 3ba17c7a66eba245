"""Periods are UTC calendar months; the remaining fraction is exact."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing.errors import InvalidInput
from billing.periods import (
    next_period,
    parse_period,
    period_bounds,
    period_of,
    previous_period,
    remaining_days,
    remaining_fraction,
)


def test_period_of_is_utc():
    assert period_of(datetime(2026, 11, 30, 23, 59, 59, 999999, tzinfo=UTC)) == "2026-11"
    plus_one = timezone(timedelta(hours=1))
    assert period_of(datetime(2026, 12, 1, 0, 30, tzinfo=plus_one)) == "2026-11"
    with pytest.raises(InvalidInput, match="no timezone"):
        period_of(datetime(2026, 11, 1))  # noqa: DTZ001 - the naive input is the point


@pytest.mark.parametrize("good", ["2000-01", "2026-11", "2999-12"])
def test_parse_period_accepts(good):
    assert parse_period(good) == good


@pytest.mark.parametrize(
    "bad",
    [
        "2026-13",
        "2026-00",
        "1999-12",
        "3000-01",
        "2026-1",
        "26-11",
        "2026/11",
        " 2026-11",
        "2026-11\n",
        "",
        "２０２６-11",
    ],
)
def test_parse_period_refuses(bad):
    with pytest.raises(InvalidInput):
        parse_period(bad)


def test_bounds_and_neighbours():
    assert period_bounds("2026-12") == (
        datetime(2026, 12, 1, tzinfo=UTC),
        datetime(2027, 1, 1, tzinfo=UTC),
    )
    assert period_bounds("2024-02")[1] - period_bounds("2024-02")[0] == timedelta(days=29)
    assert next_period("2026-12") == "2027-01"
    assert next_period("2026-01") == "2026-02"
    assert previous_period("2027-01") == "2026-12"
    assert previous_period("2026-11") == "2026-10"
    with pytest.raises(InvalidInput):
        previous_period("2000-01")
    with pytest.raises(InvalidInput):
        next_period("2999-12")


def test_remaining_fraction_examples():
    assert remaining_fraction("2026-11", datetime(2026, 11, 15, tzinfo=UTC)) == Decimal(
        16
    ) / Decimal(30)
    assert remaining_fraction("2026-11", datetime(2026, 11, 16, tzinfo=UTC)) == Decimal("0.5")
    assert remaining_fraction("2026-11", datetime(2026, 10, 3, tzinfo=UTC)) == 1
    assert remaining_fraction("2026-11", datetime(2026, 11, 1, tzinfo=UTC)) == 1
    assert remaining_fraction("2026-11", datetime(2026, 12, 1, tzinfo=UTC)) == 0
    assert remaining_fraction("2026-11", datetime(2027, 5, 1, tzinfo=UTC)) == 0
    assert remaining_days("2026-11", datetime(2026, 11, 15, 12, tzinfo=UTC)) == (
        Decimal("15.5"),
        30,
    )
    with pytest.raises(InvalidInput):
        remaining_fraction("2026-11", datetime(2026, 11, 15))  # noqa: DTZ001


# Hypothesis takes naive bounds and attaches the timezone itself.
AWARE_TIMES = st.datetimes(
    min_value=datetime(2000, 2, 1),  # noqa: DTZ001 - the periods either side must exist
    max_value=datetime(2999, 11, 30),  # noqa: DTZ001
    timezones=st.just(UTC),
)


@given(AWARE_TIMES)
def test_remaining_fraction_is_exact_and_clamped(at):
    period = period_of(at)
    start, end = period_bounds(period)
    assert start <= at < end
    assert next_period(previous_period(period)) == period
    fraction = remaining_fraction(period, at)
    assert 0 < fraction <= 1
    exact = Fraction(
        (end - at) // timedelta(microseconds=1), (end - start) // timedelta(microseconds=1)
    )
    assert abs(Fraction(fraction) - exact) < Fraction(1, 10**26)
    assert remaining_fraction(previous_period(period), at) == 0
    assert remaining_fraction(next_period(period), at) == 1
