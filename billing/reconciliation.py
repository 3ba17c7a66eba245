"""Reconciliation's rules: each gateway transaction is matched, to record, or unresolved.

Pure: the caller loads the ledger's facts for a page of gateway transactions and gets
back what to do. A pending or failed transaction moved no money, so it is matched by
definition. A succeeded one is matched when the ledger holds its reference with the same
amount and currency; else it is recorded against the bill its charge names, when that
bill exists in the same currency; else it is unresolved, with the reason a person reads.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Literal

from billing.messages import Message
from billing.payments import GatewayTransaction

# The daily schedule's window: two days, so consecutive runs overlap by one.
DEFAULT_WINDOW = timedelta(days=2)


def default_since(now: datetime) -> datetime:
    return now - DEFAULT_WINDOW


# --- What the ledger already holds -----------------------------------------------------


class LedgerMovement(Message):
    """A `captured` or `refunded` ledger entry, by its gateway reference."""

    bill_id: str
    amount: Decimal
    currency: str


class LedgerFacts(Message):
    """What the ledger knows about the references and bills one page names."""

    captures: dict[str, LedgerMovement] = {}
    refunds: dict[str, LedgerMovement] = {}
    bill_currencies: dict[str, str] = {}  # bill id -> currency, for bills that exist


def references_of(page: Iterable[GatewayTransaction]) -> tuple[list[str], list[str]]:
    """The gateway references and the bill ids a page names: what to load facts for."""
    references: set[str] = set()
    bills: set[str] = set()
    for tx in page:
        references.add(tx.gateway_reference)
        if tx.charge_reference is not None:
            references.add(tx.charge_reference)
        if "bill_id" in tx.metadata:
            bills.add(tx.metadata["bill_id"])
    return sorted(references), sorted(bills)


# --- The plan ----------------------------------------------------------------------------


class CaptureToRecord(Message):
    bill_id: str
    gateway_reference: str
    amount: Decimal
    currency: str
    method: str = ""
    authorization_code: str | None = None


class RefundToRecord(Message):
    bill_id: str
    gateway_reference: str
    idempotency_key: str
    charge_reference: str
    amount: Decimal
    currency: str


class Unresolved(Message):
    """Money at the gateway that cannot be put in the ledger without a person."""

    kind: Literal["charge", "refund"]
    gateway_reference: str
    amount: Decimal
    currency: str
    bill_id: str | None = None
    reason: str


class PagePlan(Message):
    """One page's verdicts: checked = matched + captures + refunds + unresolved."""

    checked: int
    matched: int
    captures: list[CaptureToRecord] = []
    refunds: list[RefundToRecord] = []
    unresolved: list[Unresolved] = []


def _unresolved(tx: GatewayTransaction, reason: str, bill_id: str | None = None) -> Unresolved:
    kind: Literal["charge", "refund"] = tx.kind
    return Unresolved(
        kind=kind,
        gateway_reference=tx.gateway_reference,
        amount=tx.amount,
        currency=tx.currency,
        bill_id=bill_id,
        reason=reason,
    )


def _disagreement(tx: GatewayTransaction, held: LedgerMovement) -> str | None:
    if held.amount == tx.amount and held.currency == tx.currency:
        return None
    return (
        f"the ledger holds {held.amount} {held.currency} on bill {held.bill_id}, "
        f"the gateway {tx.amount} {tx.currency}"
    )


def _charge_verdict(
    tx: GatewayTransaction, facts: LedgerFacts
) -> CaptureToRecord | Unresolved | None:
    """None: matched."""
    held = facts.captures.get(tx.gateway_reference)
    if held is not None:
        differs = _disagreement(tx, held)
        return None if differs is None else _unresolved(tx, differs, held.bill_id)
    bill_id = tx.metadata.get("bill_id")
    if not bill_id:
        return _unresolved(tx, "the capture names no bill in its metadata")
    currency = facts.bill_currencies.get(bill_id)
    if currency is None:
        return _unresolved(tx, f"the capture names bill {bill_id}, which does not exist", bill_id)
    if currency != tx.currency:
        reason = f"the capture is in {tx.currency}, bill {bill_id} in {currency}"
        return _unresolved(tx, reason, bill_id)
    return CaptureToRecord(
        bill_id=bill_id,
        gateway_reference=tx.gateway_reference,
        amount=tx.amount,
        currency=tx.currency,
        method=tx.method_type or "",
        authorization_code=tx.authorization_code,
    )


def _refund_verdict(
    tx: GatewayTransaction, facts: LedgerFacts, page_bills: dict[str, str]
) -> RefundToRecord | Unresolved | None:
    """None: matched. The bill is the refunded capture's: from the ledger, else this page."""
    held = facts.refunds.get(tx.gateway_reference)
    if held is not None:
        differs = _disagreement(tx, held)
        return None if differs is None else _unresolved(tx, differs, held.bill_id)
    charge = tx.charge_reference
    capture = facts.captures.get(charge) if charge else None
    bill_id = capture.bill_id if capture is not None else page_bills.get(charge or "")
    if charge is None or bill_id is None:
        return _unresolved(tx, f"the refunded charge {charge} cannot be tied to a bill")
    currency = facts.bill_currencies.get(bill_id, capture.currency if capture else None)
    if currency != tx.currency:
        reason = f"the refund is in {tx.currency}, bill {bill_id} in {currency}"
        return _unresolved(tx, reason, bill_id)
    return RefundToRecord(
        bill_id=bill_id,
        gateway_reference=tx.gateway_reference,
        idempotency_key=tx.idempotency_key,
        charge_reference=charge,
        amount=tx.amount,
        currency=tx.currency,
    )


def plan_page(page: list[GatewayTransaction], facts: LedgerFacts) -> PagePlan:
    """Every transaction of the page gets exactly one verdict."""
    # Charges this page will record, so a refund of one of them finds its bill.
    page_bills: dict[str, str] = {}
    matched = 0
    captures: list[CaptureToRecord] = []
    refunds: list[RefundToRecord] = []
    unresolved: list[Unresolved] = []
    for tx in page:
        if tx.status != "succeeded":
            matched += 1  # no money moved
            continue
        if tx.kind == "charge":
            verdict: CaptureToRecord | RefundToRecord | Unresolved | None
            verdict = _charge_verdict(tx, facts)
            if isinstance(verdict, CaptureToRecord):
                page_bills[tx.gateway_reference] = verdict.bill_id
        else:
            verdict = _refund_verdict(tx, facts, page_bills)
        if verdict is None:
            matched += 1
        elif isinstance(verdict, CaptureToRecord):
            captures.append(verdict)
        elif isinstance(verdict, RefundToRecord):
            refunds.append(verdict)
        else:
            unresolved.append(verdict)
    return PagePlan(
        checked=len(page),
        matched=matched,
        captures=captures,
        refunds=refunds,
        unresolved=unresolved,
    )


def report_id(request_id: str) -> str:
    """The report's id: what `GET /v1/reconciliations/{id}` takes."""
    return f"rec_{request_id}"
