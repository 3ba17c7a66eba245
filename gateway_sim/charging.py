"""A new charge, from the API or the dashboard: decided by its token, stored, settled later.

The token decides and is dropped; what it asked for is stored as its effect: the planned
outcome of a bank transfer, when it settles, and whether the charge's answers are lost.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from billing.payments import (
    ChargeOutcome,
    ChargeStatus,
    DeclineKind,
    PaymentMethodType,
    RefundOutcome,
)
from gateway_sim.decide import (
    TOKEN_LOST_ANSWER,
    TOKEN_SETTLES_LATE,
    Decision,
    decide,
    new_reference,
)
from gateway_sim.state import SimState
from gateway_sim.store import ChargeRow, RefundRow, stamp


@dataclass(frozen=True)
class NewCharge:
    idempotency_key: str
    amount: Decimal
    currency: str
    method_type: PaymentMethodType
    token: str
    description: str
    metadata: dict[str, str]


def outcome_of(row: ChargeRow) -> ChargeOutcome:
    return ChargeOutcome(
        status=ChargeStatus(row.status),
        gateway_reference=row.reference,
        amount=row.amount,
        currency=row.currency,
        authorization_code=row.authorization_code,
        decline_code=row.decline_code,
        decline_kind=DeclineKind(row.decline_kind) if row.decline_kind else None,
        message=row.message,
    )


def refund_outcome(row: RefundRow) -> RefundOutcome:
    return RefundOutcome(
        status="succeeded" if row.status == "succeeded" else "failed",
        gateway_reference=row.reference,
        amount=row.amount,
        currency=row.currency,
        message=f"Refunded {row.amount} {row.currency}",
    )


def _settles_in(sim: SimState, token: str) -> float:
    if token == TOKEN_SETTLES_LATE:
        return 2 * sim.settings.bank_transfer_deadline_delta.total_seconds()
    return sim.settings.settlement_delay_delta.total_seconds()


def store_charge(sim: SimState, new: NewCharge) -> ChargeRow:
    """Decide, store and schedule settlement; `IntegrityError` on a key stored meanwhile."""
    decision = decide(new.token, new.method_type, sim.rng, sim.settings.gateway_success_rate)
    now = stamp()
    pending = new.method_type is PaymentMethodType.BANK_TRANSFER
    # A bank transfer's outcome is decided now (keeping the seeded draws in request order)
    # and revealed at settlement.
    shown = (
        Decision(ChargeStatus.PENDING, message="Awaiting bank settlement") if pending else decision
    )
    row = ChargeRow(
        reference=new_reference("ch"),
        idempotency_key=new.idempotency_key,
        amount=new.amount,
        currency=new.currency,
        method_type=new.method_type.value,
        description=new.description,
        metadata=new.metadata,
        status=shown.status.value,
        authorization_code=shown.authorization_code,
        decline_code=shown.decline_code,
        decline_kind=shown.decline_kind.value if shown.decline_kind else None,
        message=shown.message,
        planned=decision.as_json() if pending else None,
        settle_at=now + _settles_in(sim, new.token) if pending else None,
        settled_at=None,
        event_id=None,
        webhook_state="none",
        webhook_attempts=0,
        created_at=now,
        answers_lost=new.token == TOKEN_LOST_ANSWER,
    )
    sim.store.insert_charge(row)
    if row.settle_at is not None:
        sim.settler.schedule(row.reference, row.settle_at)
    return row
