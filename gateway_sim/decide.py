"""How the simulator decides a charge: test tokens force an outcome, others follow the seed.

Only tokens outside the test set draw from the seeded generator, exactly one
`rng.random()` per new charge (success when below the rate), so a run is reproducible.
"""

from __future__ import annotations

import random
import secrets
import string
import uuid
from dataclasses import asdict, dataclass
from typing import Any

from billing.payments import ChargeStatus, DeclineKind, PaymentMethodType

TOKEN_SUCCESS = "tok_success"
TOKEN_INSUFFICIENT_FUNDS = "tok_insufficient_funds"
TOKEN_CARD_DECLINED = "tok_card_declined"
TOKEN_GATEWAY_TIMEOUT = "tok_gateway_timeout"
# Faults that still succeed: the capture happens, but its answer is lost (every time, for its
# key) or, for a bank transfer, it settles at twice BANK_TRANSFER_DEADLINE.
TOKEN_LOST_ANSWER = "tok_lost_answer"
TOKEN_SETTLES_LATE = "tok_settles_late"

_AUTH_ALPHABET = string.ascii_uppercase + string.digits


@dataclass(frozen=True)
class Decision:
    """The final outcome of a charge; a bank transfer keeps it hidden until settlement."""

    status: ChargeStatus
    authorization_code: str | None = None
    decline_code: str | None = None
    decline_kind: DeclineKind | None = None
    message: str = ""

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def new_reference(prefix: str) -> str:
    # Not from the seeded generator: a restart with the same seed must not reuse references.
    return f"{prefix}_{uuid.uuid4().hex[:24]}"


def _approved() -> Decision:
    code = "".join(secrets.choice(_AUTH_ALPHABET) for _ in range(6))
    return Decision(ChargeStatus.SUCCEEDED, authorization_code=code, message="Approved")


def _insufficient_funds() -> Decision:
    return Decision(
        ChargeStatus.FAILED,
        decline_code="insufficient_funds",
        decline_kind=DeclineKind.SOFT,
        message="The account has insufficient funds.",
    )


def _hard_decline(method: PaymentMethodType) -> Decision:
    if method is PaymentMethodType.BANK_TRANSFER:
        return Decision(
            ChargeStatus.FAILED,
            decline_code="account_closed",
            decline_kind=DeclineKind.HARD,
            message="The bank account is closed.",
        )
    return Decision(
        ChargeStatus.FAILED,
        decline_code="card_declined",
        decline_kind=DeclineKind.HARD,
        message="The payment method was declined.",
    )


def _do_not_honor() -> Decision:
    return Decision(
        ChargeStatus.FAILED,
        decline_code="do_not_honor",
        decline_kind=DeclineKind.SOFT,
        message="The issuer declined the payment; it may succeed later.",
    )


def decide(
    token: str, method: PaymentMethodType, rng: random.Random, success_rate: float
) -> Decision:
    """The outcome for a new charge; `tok_gateway_timeout` is handled before, as no outcome."""
    if token in (TOKEN_SUCCESS, TOKEN_LOST_ANSWER, TOKEN_SETTLES_LATE):
        return _approved()
    if token == TOKEN_INSUFFICIENT_FUNDS:
        return _insufficient_funds()
    if token == TOKEN_CARD_DECLINED:
        return _hard_decline(method)
    if rng.random() < success_rate:
        return _approved()
    return _do_not_honor()
