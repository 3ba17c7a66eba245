"""Refund limits: a grant never exceeds what was paid minus what is refunded or reserved."""

from __future__ import annotations

from decimal import Decimal

from billing.errors import RefundRefused
from billing.money import minor_unit, round_money


def refund_amount(
    *,
    requested: Decimal | None,
    paid: Decimal,
    refunded: Decimal,
    reserved: Decimal,
    currency: str,
) -> Decimal:
    """The amount to refund (None = all still refundable), or RefundRefused saying why."""
    for name, figure in (("paid", paid), ("refunded", refunded), ("reserved", reserved)):
        # Ledger figures, not customer input: an off-grid or negative one is a bug upstream.
        if not figure.is_finite() or figure < 0 or round_money(figure, currency) != figure:
            raise ValueError(f"{name} {figure} is not a {currency} amount >= 0")
    available = paid - refunded - reserved
    figures = f"paid {paid}, refunded {refunded}, reserved by refunds in flight {reserved}"
    if paid <= 0:
        raise RefundRefused(
            f"nothing was paid on this bill, so nothing can be refunded ({figures})"
        )
    if requested is None:
        if available <= 0:
            raise RefundRefused(f"nothing is left to refund ({figures})")
        return round_money(available, currency)
    if not requested.is_finite() or requested <= 0:
        raise RefundRefused(f"a refund must be a positive amount, not {requested}")
    if round_money(requested, currency) != requested:
        raise RefundRefused(
            f"refund {requested} has more than {minor_unit(currency)} decimals for {currency}"
        )
    if requested > available:
        raise RefundRefused(
            f"refund {requested} {currency} is above the {max(available, Decimal(0))} "
            f"still refundable ({figures})"
        )
    return round_money(requested, currency)
