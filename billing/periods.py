"""Billing periods are calendar months in UTC, spelled "YYYY-MM", half-open [start, end)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from billing.errors import InvalidInput

_PERIOD = re.compile(r"([0-9]{4})-([0-9]{2})")
_MICROSECOND = timedelta(microseconds=1)


def _utc(ts: datetime, name: str) -> datetime:
    if ts.tzinfo is None or ts.utcoffset() is None:
        raise InvalidInput(f"{name} {ts.isoformat()} has no timezone; send it with one (e.g. Z)")
    return ts.astimezone(UTC)


def _spell(year: int, month: int) -> str:
    if not 2000 <= year <= 2999:
        raise InvalidInput(f"period year {year} is outside 2000-2999")
    return f"{year:04d}-{month:02d}"


def _split(period: str) -> tuple[int, int]:
    match = _PERIOD.fullmatch(period) if isinstance(period, str) else None
    if match is None:
        raise InvalidInput(f"period {period!r} is not YYYY-MM")
    year, month = int(match.group(1)), int(match.group(2))
    if not 1 <= month <= 12:
        raise InvalidInput(f"period {period!r} has month {month:02d}; months are 01-12")
    _spell(year, month)
    return year, month


def parse_period(text: str) -> str:
    """A valid "YYYY-MM" (year 2000-2999, month 01-12) or InvalidInput."""
    _split(text)
    return text


def period_of(ts: datetime) -> str:
    """The period containing an aware `ts`, in UTC."""
    utc = _utc(ts, "timestamp")
    return _spell(utc.year, utc.month)


def period_bounds(period: str) -> tuple[datetime, datetime]:
    """[start, end) of the period, both midnight UTC on the first of a month."""
    year, month = _split(period)
    start = datetime(year, month, 1, tzinfo=UTC)
    end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)
    return start, end


def next_period(period: str) -> str:
    year, month = _split(period)
    return _spell(year + month // 12, month % 12 + 1)


def previous_period(period: str) -> str:
    year, month = _split(period)
    return _spell(year - (month == 1), (month - 2) % 12 + 1)


def remaining_fraction(period: str, at: datetime) -> Decimal:
    """(end - at) / (end - start) from exact microseconds, clamped to [0, 1]."""
    start, end = period_bounds(period)
    at = _utc(at, "at")
    if at <= start:
        return Decimal(1)
    if at >= end:
        return Decimal(0)
    # timedelta // timedelta is exact integer arithmetic; total_seconds() would be a float.
    return Decimal((end - at) // _MICROSECOND) / Decimal((end - start) // _MICROSECOND)


def remaining_days(period: str, at: datetime) -> tuple[Decimal, int]:
    """(days left from `at` to the period end, exact; days in the period), for descriptions."""
    start, end = period_bounds(period)
    at = min(max(_utc(at, "at"), start), end)
    return Decimal((end - at) // _MICROSECOND) / Decimal(86_400_000_000), (end - start).days
