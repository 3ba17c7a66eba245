"""The customers a fault run bills: each payment path, and the status its bill must end in."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from billing.periods import period_bounds, period_of, previous_period

PERIOD = previous_period(period_of(datetime.now(UTC)))
PERIOD_START = period_bounds(PERIOD)[0]


@dataclass(frozen=True)
class Plan:
    """A customer to create, and the status its cycle bill must end in."""

    tier: str
    method: str | None
    token: str | None
    expected: str


# The paths a cycle bill can take, one per entry: paid by card or PayPal, paid by a
# settled bank transfer, written off after soft declines, written off after a hard
# decline, a free customer's 0.00 bill that is paid the moment it is issued.
MIX: tuple[Plan, ...] = (
    Plan("starter", "credit_card", "tok_success", "paid"),
    Plan("professional", "paypal", "tok_success", "paid"),
    Plan("starter", "debit_card", "tok_insufficient_funds", "uncollectible"),
    Plan("starter", "credit_card", "tok_success", "paid"),
    Plan("enterprise", "bank_transfer", "tok_success", "paid"),
    Plan("starter", "credit_card", "tok_card_declined", "uncollectible"),
    Plan("professional", "credit_card", "tok_success", "paid"),
    Plan("free", None, None, "paid"),
)


def mix(n: int) -> list[Plan]:
    """n customers, the paths of MIX in turn."""
    return [MIX[i % len(MIX)] for i in range(n)]


@dataclass
class Customer:
    id: str
    key: str
    plan: Plan
