"""The books match the gateway: per bill, what the gateway moved is what the ledger holds.

`assert_books_match_gateway` is the one check every e2e, fault and chaos test runs at its
end. Per bill, matched transaction by transaction on the gateway's reference:

- every capture at the gateway is a `captured` ledger entry of the same amount, and every
  `captured` entry is a capture at the gateway (the same for refunds and `refunded`);
- so captured, refunded and captured - refunded are equal on both sides, exactly;
- the gateway captured the bill no more times than its path allows (1 unless raised);
- a capture or refund the gateway cannot tie to a bill (no `bill_id` in the charge's
  metadata) is money nobody can resolve: a failure.

The comparison itself (`compare_books`) is pure; the rest reads the two sides.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # only the readers touch these; the comparison imports no I/O
    import asyncpg
    import httpx


@dataclass
class BillBooks:
    """One side's movements on one bill, by gateway reference (charge or refund)."""

    captures: dict[str, Decimal] = field(default_factory=dict)
    refunds: dict[str, Decimal] = field(default_factory=dict)

    @property
    def captured(self) -> Decimal:
        return sum(self.captures.values(), Decimal(0))

    @property
    def refunded(self) -> Decimal:
        return sum(self.refunds.values(), Decimal(0))

    @property
    def net(self) -> Decimal:
        return self.captured - self.refunded

    def describe(self) -> str:
        return (
            f"captured {self.captured} in {len(self.captures)}, "
            f"refunded {self.refunded} in {len(self.refunds)}, net {self.net}"
        )


@dataclass(frozen=True)
class BooksFigures:
    """What was checked, for a test's figures."""

    bills: int
    captures: int
    refunds: int
    captured: Decimal
    refunded: Decimal

    def as_dict(self) -> dict[str, Any]:
        return {
            "books_bills": self.bills,
            "books_captures": self.captures,
            "books_refunds": self.refunds,
            "books_captured": str(self.captured),
            "books_refunded": str(self.refunded),
        }


class BooksMismatch(AssertionError):
    """The ledger and the gateway disagree; the message names every bill and both sides."""


def _add(into: dict[str, Decimal], reference: str, amount: Decimal) -> None:
    into[reference] = into.get(reference, Decimal(0)) + amount


def gateway_books(
    charges: Iterable[Mapping[str, Any]], refunds: Iterable[Mapping[str, Any]]
) -> tuple[dict[str, BillBooks], list[str]]:
    """The simulator's `/_sim/charges` and `/_sim/refunds` per bill, and what has no bill."""
    books: dict[str, BillBooks] = {}
    bill_of: dict[str, str | None] = {}
    unresolved: list[str] = []
    for charge in charges:
        reference = charge["gateway_reference"]
        bill_id = (charge.get("metadata") or {}).get("bill_id")
        bill_of[reference] = bill_id
        if bill_id is None:
            if charge["captured"]:
                unresolved.append(
                    f"capture {reference} of {charge['amount']} names no bill in its metadata"
                )
            continue
        # A charge that never captured still names its bill: that bill's books are checked.
        bill = books.setdefault(bill_id, BillBooks())
        if charge["captured"]:
            _add(bill.captures, reference, Decimal(charge["amount"]))
    for refund in refunds:
        if refund["status"] != "succeeded":
            continue
        bill_id = bill_of.get(refund["charge_reference"])
        if bill_id is None:
            unresolved.append(
                f"refund {refund['gateway_reference']} of {refund['amount']} on charge "
                f"{refund['charge_reference']} cannot be tied to a bill"
            )
            continue
        _add(books[bill_id].refunds, refund["gateway_reference"], Decimal(refund["amount"]))
    return books, unresolved


def ledger_books(rows: Iterable[Mapping[str, Any]]) -> dict[str, BillBooks]:
    """`captured` and `refunded` ledger entries (bill_id, kind, amount, gateway_reference)."""
    books: dict[str, BillBooks] = {}
    for row in rows:
        bill = books.setdefault(row["bill_id"], BillBooks())
        side = bill.captures if row["kind"] == "captured" else bill.refunds
        # An entry with no gateway reference can have no gateway twin: keep it, visibly.
        _add(side, row["gateway_reference"] or "<no gateway reference>", Decimal(row["amount"]))
    return books


def _unmatched(what: str, gateway: dict[str, Decimal], ledger: dict[str, Decimal]) -> list[str]:
    problems = []
    for reference in sorted(gateway.keys() | ledger.keys()):
        at_gateway, in_ledger = gateway.get(reference), ledger.get(reference)
        if in_ledger is None:
            problems.append(f"{what} {reference} of {at_gateway} missing from the ledger")
        elif at_gateway is None:
            problems.append(f"ledger {what} {reference} of {in_ledger} has no gateway twin")
        elif at_gateway != in_ledger:
            problems.append(f"{what} {reference}: gateway {at_gateway}, ledger {in_ledger}")
    return problems


def compare_books(
    gateway: Mapping[str, BillBooks],
    ledger: Mapping[str, BillBooks],
    *,
    captures_allowed: Mapping[str, int] | None = None,
    default_captures_allowed: int = 1,
) -> list[str]:
    """One line per bill whose books differ from the gateway's; empty when all match."""
    allowed = captures_allowed or {}
    problems = []
    for bill_id in sorted(gateway.keys() | ledger.keys()):
        ours, theirs = ledger.get(bill_id, BillBooks()), gateway.get(bill_id, BillBooks())
        found = _unmatched("capture", theirs.captures, ours.captures)
        found += _unmatched("refund", theirs.refunds, ours.refunds)
        limit = allowed.get(bill_id, default_captures_allowed)
        if len(theirs.captures) > limit:
            found.append(f"captured {len(theirs.captures)} times at the gateway, {limit} allowed")
        if found:
            problems.append(
                f"bill {bill_id}: gateway {theirs.describe()}; ledger {ours.describe()}: "
                + "; ".join(found)
            )
    return problems


_LEDGER = """
SELECT e.bill_id, e.kind, e.amount, e.gateway_reference
FROM ledger_entries e JOIN bills b ON b.id = e.bill_id
WHERE e.kind IN ('captured', 'refunded')
  AND ($1::timestamptz IS NULL OR b.created_at >= $1::timestamptz
       OR e.bill_id = ANY($2::text[]))"""


async def _sim_list(sim: httpx.AsyncClient, what: str) -> list[dict[str, Any]]:
    answer = await sim.get(f"/_sim/{what}")
    answer.raise_for_status()
    rows: list[dict[str, Any]] = answer.json()[what]
    return rows


async def _read_and_compare(
    pool: asyncpg.Pool,
    sim: httpx.AsyncClient,
    since: datetime | None,
    captures_allowed: Mapping[str, int] | None,
    default_captures_allowed: int,
) -> tuple[list[str], BooksFigures]:
    gateway, problems = gateway_books(
        await _sim_list(sim, "charges"), await _sim_list(sim, "refunds")
    )
    # The gateway's bills are all this test's (each test has its own simulator); of the
    # ledger's, in a database shared between tests, only the bills made since it began.
    rows = await pool.fetch(_LEDGER, since, sorted(gateway))
    ledger = ledger_books(dict(row) for row in rows)
    problems += compare_books(
        gateway,
        ledger,
        captures_allowed=captures_allowed,
        default_captures_allowed=default_captures_allowed,
    )
    bills = gateway.values()
    figures = BooksFigures(
        bills=len(gateway.keys() | ledger.keys()),
        captures=sum(len(b.captures) for b in bills),
        refunds=sum(len(b.refunds) for b in bills),
        captured=sum((b.captured for b in bills), Decimal(0)),
        refunded=sum((b.refunded for b in bills), Decimal(0)),
    )
    return problems, figures


async def assert_books_match_gateway(
    pool: asyncpg.Pool,
    sim: httpx.AsyncClient,
    *,
    since: datetime | None = None,
    captures_allowed: Mapping[str, int] | None = None,
    default_captures_allowed: int = 1,
    settle_s: float = 0.0,
) -> BooksFigures:
    """Per bill, the gateway's captures and refunds are the ledger's, one for one.

    `since` (the database's clock) limits the ledger to bills created from then on, for
    a database shared between tests. `settle_s` reads again for that long while the two
    differ: a saga between its gateway call and its ledger write is not a mismatch yet;
    one still there after it is.
    """
    deadline = time.monotonic() + settle_s
    while True:
        problems, figures = await _read_and_compare(
            pool, sim, since, captures_allowed, default_captures_allowed
        )
        if not problems:
            return figures
        if time.monotonic() >= deadline:
            raise BooksMismatch("the books do not match the gateway:\n" + "\n".join(problems))
        await asyncio.sleep(0.5)
