"""Billing periods are calendar months in UTC, spelled "YYYY-MM", half-open [start, end).

A period is billed once it has ended, and only for a subscription that began before its end.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from billing.errors import Conflict, InvalidInput

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


def shift_period(period: str, months: int) -> str:
    """The period `months` after `period` (before it when negative)."""
    year, month = _split(period)
    index = year * 12 + month - 1 + months
    return _spell(index // 12, index % 12 + 1)


def period_range(first: str, last: str, *, most: int) -> list[str]:
    """first..last inclusive; InvalidInput when reversed or longer than `most` months."""
    first, last = parse_period(first), parse_period(last)
    if first > last:
        raise InvalidInput(f"from {first} is after to {last}")
    out = [first]
    while out[-1] != last:
        if len(out) == most:
            raise InvalidInput(f"at most {most} months per request")
        out.append(next_period(out[-1]))
    return out


def require_ended(period: str, now: datetime) -> None:
    """Conflict while the period runs: a month is billed once it is over."""
    _, end = period_bounds(period)
    if end > _utc(now, "now"):
        raise Conflict(f"period {period} has not ended yet; it can be billed from {end:%Y-%m-%d}")


def subscribed_during(period: str, started_at: datetime) -> bool:
    """Whether a subscription that began at `started_at` owes anything for `period`."""
    _, end = period_bounds(period)
    return _utc(started_at, "started_at") < end


def require_subscribed(customer_id: str, period: str, started_at: datetime) -> None:
    """Conflict for a period that ended before the customer's subscription began."""
    if not subscribed_during(period, started_at):
        raise Conflict(f"{customer_id}'s subscription began after {period}")


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
