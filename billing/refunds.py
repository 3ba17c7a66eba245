"""Refund limits: a grant never exceeds what was paid minus what is refunded or reserved."""

from __future__ import annotations

from decimal import Decimal

from billing.errors import InvalidInput, RefundRefused
from billing.ledger import BillState
from billing.money import minor_unit, parse_money, round_money


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


def check_refund_request(
    requested: Decimal | None, state: BillState, currency: str
) -> Decimal | None:
    """The amount asked, on the currency's grid (None: all that is refundable), checked
    against the bill as it stands before a saga starts: not a positive amount of `currency`
    is InvalidInput; above what is refundable now, RefundRefused. The saga's reservation
    (`refund_amount`, counting refunds in flight) stays the authority; this only spares a
    saga that could not succeed."""
    if requested is not None:
        try:
            requested = parse_money(requested, currency)
        except InvalidInput as exc:
            raise InvalidInput(f"amount: {exc.message}") from exc
        if requested <= 0:
            raise InvalidInput("amount: must be above zero")
    refund_amount(
        requested=requested,
        paid=state.amount_paid,
        refunded=state.amount_refunded,
        reserved=round_money(Decimal(0), currency),
        currency=currency,
    )
    return requested
