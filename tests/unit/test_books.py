"""The books' comparison (tests/books.py): each way the ledger can differ from the gateway."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from tests.books import BillBooks, compare_books, gateway_books, ledger_books

D = Decimal


def charge(ref: str, amount: str, bill: str | None, *, captured: bool = True) -> dict[str, Any]:
    metadata = {} if bill is None else {"bill_id": bill, "customer_id": "c1"}
    return {"gateway_reference": ref, "captured": captured, "amount": amount, "metadata": metadata}


def refund(ref: str, charge_ref: str, amount: str, status: str = "succeeded") -> dict[str, Any]:
    return {
        "gateway_reference": ref,
        "charge_reference": charge_ref,
        "amount": amount,
        "status": status,
    }


def entry(bill: str, kind: str, amount: str, ref: str | None) -> dict[str, Any]:
    return {"bill_id": bill, "kind": kind, "amount": D(amount), "gateway_reference": ref}


def books(captures: dict[str, str], refunds: dict[str, str] | None = None) -> BillBooks:
    return BillBooks(
        captures={r: D(a) for r, a in captures.items()},
        refunds={r: D(a) for r, a in (refunds or {}).items()},
    )


def test_matching_books_have_no_problems():
    gateway = {"b1": books({"ch_1": "10.00"}, {"re_1": "4.00"}), "b2": books({})}
    ledger = {"b1": books({"ch_1": "10.00"}, {"re_1": "4.00"})}
    assert compare_books(gateway, ledger) == []


def test_a_doubled_capture_is_named_with_both_sides_figures():
    gateway = {"b1": books({"ch_1": "10.00", "ch_2": "10.00"})}
    ledger = {"b1": books({"ch_1": "10.00"})}
    (problem,) = compare_books(gateway, ledger)
    assert problem.startswith("bill b1: gateway captured 20.00 in 2, refunded 0 in 0, net 20.00")
    assert "ledger captured 10.00 in 1" in problem
    assert "capture ch_2 of 10.00 missing from the ledger" in problem
    assert "captured 2 times at the gateway, 1 allowed" in problem


def test_two_captures_pass_where_the_path_allows_them():
    both = books({"ch_1": "10.00", "ch_2": "10.00"}, {"re_1": "10.00"})
    assert compare_books({"b1": both}, {"b1": both}, captures_allowed={"b1": 2}) == []
    assert compare_books({"b1": both}, {"b1": both}, default_captures_allowed=2) == []
    (problem,) = compare_books({"b1": both}, {"b1": both}, captures_allowed={"b2": 2})
    assert problem.endswith("captured 2 times at the gateway, 1 allowed")


def test_a_capture_missing_from_the_ledger():
    (problem,) = compare_books({"b1": books({"ch_1": "10.00"})}, {})
    assert "ledger captured 0 in 0, refunded 0 in 0, net 0" in problem
    assert "capture ch_1 of 10.00 missing from the ledger" in problem


def test_a_refund_missing_from_the_ledger():
    gateway = {"b1": books({"ch_1": "10.00"}, {"re_1": "10.00"})}
    ledger = {"b1": books({"ch_1": "10.00"}, {"re_2": "6.00"})}
    (problem,) = compare_books(gateway, ledger)
    assert "gateway captured 10.00 in 1, refunded 10.00 in 1, net 0.00" in problem
    assert "ledger captured 10.00 in 1, refunded 6.00 in 1, net 4.00" in problem
    assert "refund re_1 of 10.00 missing from the ledger" in problem
    assert "ledger refund re_2 of 6.00 has no gateway twin" in problem


def test_a_ledger_entry_with_no_gateway_twin():
    (problem,) = compare_books({}, {"b9": books({"ch_9": "5.00"})})
    assert problem.startswith("bill b9: gateway captured 0 in 0")
    assert "ledger capture ch_9 of 5.00 has no gateway twin" in problem


def test_the_same_reference_with_another_amount():
    (problem,) = compare_books({"b1": books({"ch_1": "10.00"})}, {"b1": books({"ch_1": "1.00"})})
    assert "capture ch_1: gateway 10.00, ledger 1.00" in problem


def test_equal_nets_from_different_movements_still_differ():
    # 10 captured, 10 refunded == 0 captured: the nets agree, the books do not.
    gateway = {"b1": books({"ch_1": "10.00"}, {"re_1": "10.00"})}
    (problem,) = compare_books(gateway, {})
    assert "net 0.00" in problem
    assert "missing from the ledger" in problem


def test_gateway_books_by_bill_with_what_names_no_bill():
    charges = [
        charge("ch_1", "10.00", "b1"),
        charge("ch_2", "10.00", "b1", captured=False),
        charge("ch_3", "7.00", "b2", captured=False),
        charge("ch_4", "3.00", None),
        charge("ch_5", "3.00", None, captured=False),
    ]
    refunds = [
        refund("re_1", "ch_1", "4.00"),
        refund("re_2", "ch_1", "1.00", status="failed"),
        refund("re_3", "ch_4", "1.00"),
    ]
    by_bill, unresolved = gateway_books(charges, refunds)
    assert by_bill == {"b1": books({"ch_1": "10.00"}, {"re_1": "4.00"}), "b2": books({})}
    assert unresolved == [
        "capture ch_4 of 3.00 names no bill in its metadata",
        "refund re_3 of 1.00 on charge ch_4 cannot be tied to a bill",
    ]


def test_ledger_books_by_bill_and_reference():
    rows = [
        entry("b1", "captured", "10.00", "ch_1"),
        entry("b1", "refunded", "4.00", "re_1"),
        entry("b1", "captured", "10.00", "ch_1"),
        entry("b2", "refunded", "1.00", None),
    ]
    assert ledger_books(rows) == {
        "b1": books({"ch_1": "20.00"}, {"re_1": "4.00"}),
        "b2": books({}, {"<no gateway reference>": "1.00"}),
    }
