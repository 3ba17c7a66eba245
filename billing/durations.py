"""Durations written as settings (`30s`, `5m`, `2h`, `1d`) parsed to `timedelta`."""

from __future__ import annotations

import re
from datetime import timedelta

_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")


def parse_duration(text: str) -> timedelta:
    """`1d` -> one day; a bare number of seconds is refused so units are never guessed."""
    match = _PATTERN.match(text)
    if match is None:
        raise ValueError(f"not a duration: {text!r} (use e.g. 30s, 5m, 2h, 1d)")
    return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])


def parse_schedule(text: str) -> list[timedelta]:
    """`1d,3d,7d` -> the dunning delays, in order; empty text means no retries."""
    return [parse_duration(part) for part in text.split(",") if part.strip()]
