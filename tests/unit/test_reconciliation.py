"""Reconciliation's verdicts: every gateway transaction matched, to record, or unresolved."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from billing.payments import GatewayTransaction
from billing.reconciliation import (
    CaptureToRecord,
    LedgerFacts,
    LedgerMovement,
    RefundToRecord,
    default_since,
    plan_page,
    references_of,
)

AT = datetime(2026, 5, 2, 4, 0, tzinfo=UTC)
BILLS = {"bill_1": "USD", "bill_eur": "EUR"}


def charge(ref: str, amount: str = "10.00", status: str = "succeeded", **kw: Any):
    fields: dict[str, Any] = {
        "kind": "charge",
        "gateway_reference": ref,
        "idempotency_key": f"key-{ref}",
        "status": status,
        "amount": Decimal(amount),
        "currency": "USD",
        "created_at": AT,
        "metadata": {"bill_id": "bill_1"},
        "method_type": "credit_card",
        "authorization_code": "auth_1",
    }
    return GatewayTransaction(**(fields | kw))


def refund(ref: str, of: str, amount: str = "4.00", status: str = "succeeded", **kw: Any):
    fields: dict[str, Any] = {
        "kind": "refund",
        "gateway_reference": ref,
        "idempotency_key": f"key-{ref}",
        "status": status,
        "amount": Decimal(amount),
        "currency": "USD",
        "created_at": AT,
        "charge_reference": of,
    }
    return GatewayTransaction(**(fields | kw))


def held(amount: str = "10.00", bill_id: str = "bill_1", currency: str = "USD"):
    return LedgerMovement(bill_id=bill_id, amount=Decimal(amount), currency=currency)


def facts(captures=None, refunds=None, bills=None) -> LedgerFacts:
    return LedgerFacts(
        captures=captures or {},
        refunds=refunds or {},
        bill_currencies=BILLS if bills is None else bills,
    )


def test_the_default_window_is_the_last_two_days():
    assert default_since(AT) == AT - timedelta(days=2)


def test_a_capture_the_ledger_holds_is_matched():
    plan = plan_page([charge("ch_1")], facts(captures={"ch_1": held("10")}))
    assert (plan.checked, plan.matched, plan.captures, plan.unresolved) == (1, 1, [], [])


def test_a_capture_the_ledger_lacks_is_recorded_against_its_bill():
    plan = plan_page([charge("ch_2", "7.50")], facts())
    assert plan.matched == 0
    assert plan.captures == [
        CaptureToRecord(
            bill_id="bill_1",
            gateway_reference="ch_2",
            amount=Decimal("7.50"),
            currency="USD",
            method="credit_card",
            authorization_code="auth_1",
        )
    ]


def test_pending_and_failed_charges_and_refunds_moved_no_money():
    page = [
        charge("ch_p", status="pending"),
        charge("ch_f", status="failed", metadata={}),
        refund("re_f", "ch_nowhere", status="failed"),
    ]
    plan = plan_page(page, facts(bills={}))
    assert (plan.checked, plan.matched, plan.captures, plan.unresolved) == (3, 3, [], [])


def test_a_capture_naming_no_bill_or_an_unknown_bill_is_unresolved():
    page = [charge("ch_a", metadata={}), charge("ch_b", metadata={"bill_id": "bill_gone"})]
    plan = plan_page(page, facts())
    assert plan.captures == []
    assert [(u.gateway_reference, u.bill_id) for u in plan.unresolved] == [
        ("ch_a", None),
        ("ch_b", "bill_gone"),
    ]
    assert "names no bill" in plan.unresolved[0].reason
    assert "does not exist" in plan.unresolved[1].reason


def test_a_currency_mismatch_is_unresolved():
    plan = plan_page([charge("ch_e", metadata={"bill_id": "bill_eur"})], facts())
    assert plan.captures == []
    assert "EUR" in plan.unresolved[0].reason


def test_an_amount_the_ledger_disagrees_with_is_unresolved():
    plan = plan_page([charge("ch_1", "10.00")], facts(captures={"ch_1": held("9.00")}))
    assert plan.matched == 0
    assert plan.unresolved[0].bill_id == "bill_1"
    assert "9.00" in plan.unresolved[0].reason


def test_a_refund_the_ledger_lacks_is_tied_through_the_captured_entry():
    plan = plan_page([refund("re_1", "ch_1")], facts(captures={"ch_1": held()}, bills={}))
    assert plan.refunds == [
        RefundToRecord(
            bill_id="bill_1",
            gateway_reference="re_1",
            idempotency_key="key-re_1",
            charge_reference="ch_1",
            amount=Decimal("4.00"),
            currency="USD",
        )
    ]


def test_a_refund_of_a_capture_found_on_the_same_page_is_tied_through_its_metadata():
    plan = plan_page([charge("ch_9"), refund("re_9", "ch_9")], facts())
    assert [c.gateway_reference for c in plan.captures] == ["ch_9"]
    assert [(r.gateway_reference, r.bill_id) for r in plan.refunds] == [("re_9", "bill_1")]


def test_a_refund_the_ledger_holds_is_matched():
    plan = plan_page(
        [refund("re_1", "ch_1")],
        facts(captures={"ch_1": held()}, refunds={"re_1": held("4.00")}),
    )
    assert (plan.matched, plan.refunds, plan.unresolved) == (1, [], [])


def test_a_refund_of_an_unknown_or_unresolved_charge_is_unresolved():
    page = [charge("ch_x", metadata={}), refund("re_x", "ch_x"), refund("re_y", "ch_never")]
    plan = plan_page(page, facts())
    assert [u.gateway_reference for u in plan.unresolved] == ["ch_x", "re_x", "re_y"]
    assert "cannot be tied" in plan.unresolved[2].reason


def test_references_name_refunded_charges_and_metadata_bills():
    page = [charge("ch_1"), refund("re_1", "ch_0"), charge("ch_2", metadata={})]
    assert references_of(page) == (["ch_0", "ch_1", "ch_2", "re_1"], ["bill_1"])


_KINDS = st.sampled_from(["held", "missing", "no_bill", "unknown_bill", "pending"])


@given(st.lists(_KINDS, max_size=30))
def test_every_transaction_gets_exactly_one_verdict(kinds: list[str]):
    page, captures = [], {}
    for i, kind in enumerate(kinds):
        ref = f"ch_{i}"
        if kind == "held":
            captures[ref] = held()
        metadata = {
            "no_bill": {},
            "unknown_bill": {"bill_id": "bill_gone"},
        }.get(kind, {"bill_id": "bill_1"})
        status = "pending" if kind == "pending" else "succeeded"
        page.append(charge(ref, status=status, metadata=metadata))
        page.append(refund(f"re_{i}", ref))
    plan = plan_page(page, facts(captures=captures))
    verdicts = plan.matched + len(plan.captures) + len(plan.refunds) + len(plan.unresolved)
    assert verdicts == plan.checked == len(page)
    assert len(plan.captures) == kinds.count("missing")
