"""Masks secrets in text bound for a log: keys, payment tokens, card numbers, URL passwords.

Two nets: the exact values of the configured secrets, and patterns for what the service
handles but never configures (customer keys, gateway tokens, card numbers a caller sent).
A card number is masked only when it passes the Luhn check, so ids and amounts survive.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

MASK = "[REDACTED]"
_MIN_SECRET = 6  # shorter configured values would mask ordinary words

_BEARER = re.compile(r"(?i)\b(bearer\s+)[^\s\"',;]+")
_PREFIXED = re.compile(r"\b(sk|ck|tok|whsec|pk|rk)_[A-Za-z0-9_\-]+")
_URL_PASSWORD = re.compile(r"([a-z][a-z0-9+.\-]*://[^:/\s@]*:)[^@\s/]+@", re.IGNORECASE)
# A card number as people write it: 13-19 digits in one run, or groups of four (Amex 4-6-5)
# split by one kind of separator. Never the tail of a word: ids such as
# `bill-cus_8824db1234567890-202611` keep their digits.
_DIGIT_RUN = re.compile(
    r"(?<!\w)(?<!\d\.)"
    r"(?:\d{13,19}|\d{4}([ -])\d{4}\1\d{4}\1\d{1,7}|\d{4}([ -])\d{6}\2\d{5})"
    r"(?!\w|\.\d)"
)


def luhn_ok(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _is_card(run: str) -> bool:
    return luhn_ok(re.sub(r"\D", "", run))


def card_numbers(text: str) -> list[str]:
    """The card numbers in `text`, as written: card-shaped digit runs that pass Luhn."""
    return [m.group(0) for m in _DIGIT_RUN.finditer(text) if _is_card(m.group(0))]


def _card(match: re.Match[str]) -> str:
    return "[CARD]" if _is_card(match.group(0)) else match.group(0)


class Redactor:
    """`redactor(text)` is `text` with every secret it knows masked."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # Longest first: a secret that contains another is masked whole.
        self.secrets = sorted({s for s in secrets if len(s) >= _MIN_SECRET}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        text = _BEARER.sub(lambda m: m.group(1) + MASK, text)
        text = _PREFIXED.sub(lambda m: f"{m.group(1)}_{MASK}", text)
        text = _URL_PASSWORD.sub(lambda m: m.group(1) + MASK + "@", text)
        return _DIGIT_RUN.sub(_card, text)
