"""Periods are UTC calendar months; the remaining fraction is exact."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing.errors import Conflict, InvalidInput
from billing.periods import (
    next_period,
    parse_period,
    period_bounds,
    period_of,
    period_range,
    previous_period,
    remaining_days,
    remaining_fraction,
    require_ended,
    require_subscribed,
    shift_period,
    subscribed_during,
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


@pytest.mark.parametrize(
    ("period", "months", "shifted"),
    [("2026-11", 0, "2026-11"), ("2026-11", 2, "2027-01"), ("2026-01", -1, "2025-12"),
     ("2026-06", -17, "2025-01"), ("2000-01", 11, "2000-12")],
)  # fmt: skip
def test_shift_period(period, months, shifted):
    assert shift_period(period, months) == shifted


@given(st.integers(2001, 2998), st.integers(1, 12), st.integers(-12, 12))
def test_shift_period_steps_like_next_and_previous(year, month, months):
    period = f"{year:04d}-{month:02d}"
    stepped = period
    for _ in range(abs(months)):
        stepped = next_period(stepped) if months > 0 else previous_period(stepped)
    assert shift_period(period, months) == stepped


def test_period_range():
    assert period_range("2025-11", "2026-02", most=36) == [
        "2025-11",
        "2025-12",
        "2026-01",
        "2026-02",
    ]
    assert period_range("2026-02", "2026-02", most=1) == ["2026-02"]
    assert len(period_range("2024-01", "2026-12", most=36)) == 36
    with pytest.raises(InvalidInput, match="from 2026-03 is after to 2026-02"):
        period_range("2026-03", "2026-02", most=36)
    with pytest.raises(InvalidInput, match="at most 36 months"):
        period_range("2020-01", "2026-01", most=36)
    with pytest.raises(InvalidInput, match="not YYYY-MM"):
        period_range("2026-1", "2026-02", most=36)


def test_a_period_is_billed_once_it_has_ended():
    end = datetime(2026, 12, 1, tzinfo=UTC)
    require_ended("2026-11", end)  # from its last microsecond on
    with pytest.raises(
        Conflict, match="2026-11 has not ended yet; it can be billed from 2026-12-01"
    ):
        require_ended("2026-11", end - timedelta(microseconds=1))


def test_a_period_is_owed_by_a_subscription_that_began_before_its_end():
    end = datetime(2026, 12, 1, tzinfo=UTC)
    assert subscribed_during("2026-11", end - timedelta(microseconds=1))
    assert subscribed_during("2026-11", datetime(2020, 1, 1, tzinfo=UTC))
    assert not subscribed_during("2026-11", end)
    require_subscribed("cus_1", "2026-11", datetime(2026, 11, 30, tzinfo=UTC))
    with pytest.raises(Conflict, match="cus_1's subscription began after 2026-11"):
        require_subscribed("cus_1", "2026-11", end)
    with pytest.raises(InvalidInput, match="no timezone"):
        subscribed_during("2026-11", datetime(2026, 11, 1))  # noqa: DTZ001 - the point
