"""A bill's status and figures, derived by one pure function from its append-only ledger."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from enum import StrEnum

from pydantic import BaseModel, ConfigDict


class EntryKind(StrEnum):
    """The `ledger_entries.kind` CHECK values of migrations/0001_initial.sql."""

    ISSUED = "issued"
    CAPTURED = "captured"
    REFUNDED = "refunded"
    WRITTEN_OFF = "written_off"
    VOIDED = "voided"


class LedgerEntry(BaseModel):
    model_config = ConfigDict(frozen=True)

    kind: EntryKind
    amount: Decimal


class BillStatus(StrEnum):
    PENDING = "pending"
    PAID = "paid"
    VOID = "void"
    UNCOLLECTIBLE = "uncollectible"


class BillState(BaseModel):
    """What the ledger says about one bill; never stored, always derived."""

    model_config = ConfigDict(frozen=True)

    status: BillStatus
    total: Decimal
    amount_paid: Decimal
    amount_refunded: Decimal
    amount_due: Decimal
    refundable: Decimal
    written_off: Decimal


def bill_state(total: Decimal, entries: Iterable[LedgerEntry]) -> BillState:
    """Status and figures from the entries; an impossible ledger raises ValueError."""
    if not total.is_finite() or total < 0:
        raise ValueError(f"a bill total is a finite amount >= 0, not {total}")
    zero = total * 0  # keeps the total's exponent, so an empty figure reads 0.00
    sums = dict.fromkeys(EntryKind, zero)
    seen: set[EntryKind] = set()
    for entry in entries:
        if not entry.amount.is_finite() or entry.amount < 0:
            raise ValueError(f"ledger amounts are >= 0; got {entry.kind} {entry.amount}")
        sums[entry.kind] += entry.amount
        seen.add(entry.kind)
    paid, refunded = sums[EntryKind.CAPTURED], sums[EntryKind.REFUNDED]
    if paid > total:
        raise ValueError(f"ledger captured {paid}, more than the bill total {total}")
    if refunded > paid:
        raise ValueError(f"ledger refunded {refunded}, more than the {paid} captured")
    if EntryKind.VOIDED in seen:
        if paid > 0:
            raise ValueError(f"a void bill cannot hold captured money ({paid})")
        status = BillStatus.VOID
    elif paid >= total:
        status = BillStatus.PAID  # a 0.00 bill is paid the moment it is issued
    elif EntryKind.WRITTEN_OFF in seen:
        status = BillStatus.UNCOLLECTIBLE
    else:
        status = BillStatus.PENDING
    settled = status in (BillStatus.VOID, BillStatus.PAID)
    return BillState(
        status=status,
        total=total,
        amount_paid=paid,
        amount_refunded=refunded,
        amount_due=zero if settled else total - paid,
        refundable=paid - refunded,
        written_off=sums[EntryKind.WRITTEN_OFF],
    )


def can_void(state: BillState) -> bool:
    """Only a bill that holds no captured money, and is not already void or paid."""
    return state.status in (BillStatus.PENDING, BillStatus.UNCOLLECTIBLE) and state.amount_paid == 0


def can_charge(state: BillState) -> bool:
    """Pending or uncollectible with something still due (a new card may pay it)."""
    return state.status in (BillStatus.PENDING, BillStatus.UNCOLLECTIBLE) and state.amount_due > 0


def can_write_off(state: BillState) -> bool:
    """Only a pending bill with something still due; dunning exhausted writes it off."""
    return state.status == BillStatus.PENDING and state.amount_due > 0
