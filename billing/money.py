"""Money is an exact `Decimal` with its currency; `round_money` is the codebase's one rounding."""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Context, Decimal, Inexact, InvalidOperation, Overflow

from billing.errors import InvalidInput

MINOR_UNITS: dict[str, int] = {"USD": 2, "EUR": 2, "GBP": 2, "JPY": 0}
SYMBOLS: dict[str, str] = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥"}

# numeric(20, 2) in the schema: anything at or above this cannot be stored.
MAX_AMOUNT = Decimal(10) ** 18

# Wide enough that products of stored prices (numeric(20,10)) and quantities (bigint) are
# exact; Inexact is trapped so a lost digit is an error, never a silent rounding.
_EXACT = Context(prec=100, traps=[Inexact, InvalidOperation, Overflow])
_WIDE = Context(prec=100)  # only widens precision; rounding is always passed explicitly
_PLAIN_DECIMAL = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")


def minor_unit(currency: str) -> int:
    """Digits after the decimal point of `currency`; unknown currencies are refused."""
    try:
        return MINOR_UNITS[currency]
    except KeyError:
        known = ", ".join(sorted(MINOR_UNITS))
        raise InvalidInput(f"unknown currency {currency!r} (known: {known})") from None


def round_money(amount: Decimal, currency: str) -> Decimal:
    """Quantize to the currency's minor unit, ROUND_HALF_UP (halves away from zero)."""
    if not amount.is_finite():
        raise InvalidInput(f"not a finite amount: {amount}")
    quantum = Decimal(1).scaleb(-minor_unit(currency))
    return amount.quantize(quantum, rounding=ROUND_HALF_UP, context=_WIDE)


def exact_mul(a: Decimal | int, b: Decimal | int) -> Decimal:
    """`a * b` with every digit kept: raises rather than round when it cannot."""
    return _EXACT.multiply(Decimal(a), Decimal(b))


def parse_money(text: str | Decimal | int, currency: str) -> Decimal:
    """An API amount, exact, >= 0, on the currency's minor-unit grid; anything else is refused."""
    if isinstance(text, float):
        raise InvalidInput(f'amount {text!r} is a float; send it as a decimal string like "12.50"')
    if isinstance(text, bool):
        raise InvalidInput(f"amount {text!r} is not a number")
    if isinstance(text, int):
        value = Decimal(text)
    elif isinstance(text, Decimal):
        value = text
    elif isinstance(text, str):
        if _PLAIN_DECIMAL.fullmatch(text) is None:
            raise InvalidInput(f'amount {text[:40]!r} is not a plain decimal like "12.50"')
        value = Decimal(text)
    else:
        raise InvalidInput(f"amount of type {type(text).__name__} is not accepted")
    if not value.is_finite():
        raise InvalidInput(f"amount {value} is not a finite number")
    if value < 0:
        raise InvalidInput(f"amount {value} is negative")
    if value >= MAX_AMOUNT:
        raise InvalidInput(f"amount {value} is too large")
    rounded = round_money(value, currency)
    if rounded != value:
        raise InvalidInput(
            f"amount {value} has more than {minor_unit(currency)} decimals for {currency}"
        )
    return rounded.copy_abs()  # "-0" parses to 0, never to a negative zero


def format_money(amount: Decimal, currency: str) -> str:
    """The JSON spelling of an already-rounded amount: "590.00", always minor-unit digits."""
    rounded = round_money(amount, currency)
    if rounded != amount:
        raise ValueError(f"{amount} is not rounded to {currency} minor units; round_money it first")
    if rounded.is_zero():
        rounded = rounded.copy_abs()
    return f"{rounded:f}"


def format_price(price: Decimal, currency: str) -> str:
    """A unit price for a reader, every significant digit kept: "$0.001", "$0.02", "$10.00"."""
    if not price.is_finite():
        raise ValueError(f"not a finite price: {price}")
    normal = price.normalize()
    # Padding up to the minor unit is exact; a price with more digits keeps them all.
    padded = round_money(normal, currency)
    shown = padded if padded == normal else normal
    return f"{SYMBOLS.get(currency, currency + ' ')}{shown:f}"
