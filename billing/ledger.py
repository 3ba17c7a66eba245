"""A bill's status and figures, derived by one pure function from its append-only ledger."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
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
    # A late payment of a written-off bill: the write-off undone by an entry, never an edit.
    WRITE_OFF_REVERSED = "write_off_reversed"


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
    # Money held beyond what the bill owes (paid twice, or paid after a void): refund it.
    excess: Decimal


def ledger_totals(entries: Iterable[LedgerEntry]) -> dict[EntryKind, Decimal]:
    """The entries summed by kind; a kind is present only if an entry of it exists."""
    totals: dict[EntryKind, Decimal] = {}
    for entry in entries:
        if not entry.amount.is_finite() or entry.amount < 0:
            raise ValueError(f"ledger amounts are >= 0; got {entry.kind} {entry.amount}")
        totals[entry.kind] = totals.get(entry.kind, Decimal(0)) + entry.amount
    return totals


def bill_state(total: Decimal, entries: Iterable[LedgerEntry]) -> BillState:
    """Status and figures from the entries; an impossible ledger raises ValueError."""
    return state_from_totals(total, ledger_totals(entries))


def state_from_totals(total: Decimal, totals: Mapping[EntryKind, Decimal]) -> BillState:
    """Status and figures from the ledger summed by kind (a kind present: an entry of it
    exists, even at 0.00); the one fold every reader of a bill's state goes through. An
    impossible ledger raises ValueError.

    Money that reached the gateway is always recorded, so a bill may hold more than it
    owes (a second capture, a payment after a void): that surplus is `excess`, and the
    overpayment refund brings it back to zero.
    """
    if not total.is_finite() or total < 0:
        raise ValueError(f"a bill total is a finite amount >= 0, not {total}")
    zero = total * 0  # keeps the total's exponent, so an empty figure reads 0.00
    for kind, amount in totals.items():
        if not amount.is_finite() or amount < 0:
            raise ValueError(f"ledger amounts are >= 0; got {kind} {amount}")
    sums = {kind: zero + totals.get(kind, zero) for kind in EntryKind}
    paid, refunded = sums[EntryKind.CAPTURED], sums[EntryKind.REFUNDED]
    if refunded > paid:
        raise ValueError(f"ledger refunded {refunded}, more than the {paid} captured")
    written_off = sums[EntryKind.WRITTEN_OFF] - sums[EntryKind.WRITE_OFF_REVERSED]
    if written_off < 0:
        raise ValueError(f"ledger reversed more write-off than was written off ({written_off})")
    void = EntryKind.VOIDED in totals
    owed = zero if void else total
    if void:
        status = BillStatus.VOID
    elif paid >= total:
        status = BillStatus.PAID  # a 0.00 bill is paid the moment it is issued
    elif written_off > 0:
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
        written_off=written_off,
        excess=max(zero, paid - refunded - owed),
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


def write_off_reversal(state: BillState, captured: Decimal) -> Decimal:
    """What a capture recorded on a written-off bill reverses of the write-off (`state` is
    the bill after the capture): as much as the payment covers, never more than is left."""
    return min(state.written_off, captured)
