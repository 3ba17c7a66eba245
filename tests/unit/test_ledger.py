"""bill_state over every short ledger, plus random legal histories."""

from __future__ import annotations

import itertools
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from billing.ledger import (
    BillState,
    BillStatus,
    EntryKind,
    LedgerEntry,
    bill_state,
    can_charge,
    can_void,
    can_write_off,
    state_from_totals,
    write_off_reversal,
)


def entry(kind: EntryKind, amount: str) -> LedgerEntry:
    return LedgerEntry(kind=kind, amount=Decimal(amount))


def test_kinds_match_the_schema_check():
    assert [k.value for k in EntryKind] == [
        "issued",
        "captured",
        "refunded",
        "written_off",
        "voided",
        "write_off_reversed",
    ]
    assert [s.value for s in BillStatus] == ["pending", "paid", "void", "uncollectible"]


def test_examples():
    total = Decimal("590.00")
    issued = entry(EntryKind.ISSUED, "590.00")
    state = bill_state(total, [issued])
    assert state == BillState(
        status=BillStatus.PENDING,
        total=total,
        amount_paid=Decimal("0.00"),
        amount_refunded=Decimal("0.00"),
        amount_due=Decimal("590.00"),
        refundable=Decimal("0.00"),
        written_off=Decimal("0.00"),
        excess=Decimal("0.00"),
    )
    assert str(state.amount_paid) == "0.00"
    paid = bill_state(
        total, [issued, entry(EntryKind.CAPTURED, "590.00"), entry(EntryKind.REFUNDED, "90.00")]
    )
    assert (paid.status, str(paid.amount_due), str(paid.refundable), str(paid.amount_refunded)) == (
        BillStatus.PAID,
        "0.00",
        "500.00",
        "90.00",
    )
    lost = bill_state(total, [issued, entry(EntryKind.WRITTEN_OFF, "590.00")])
    assert (lost.status, str(lost.amount_due), str(lost.written_off)) == (
        BillStatus.UNCOLLECTIBLE,
        "590.00",
        "590.00",
    )
    recovered = bill_state(
        total, [issued, entry(EntryKind.WRITTEN_OFF, "590.00"), entry(EntryKind.CAPTURED, "590.00")]
    )
    assert recovered.status is BillStatus.PAID
    void = bill_state(total, [issued, entry(EntryKind.VOIDED, "590.00")])
    assert (void.status, str(void.amount_due)) == (BillStatus.VOID, "0.00")


def ten(*entries: LedgerEntry) -> BillState:
    return bill_state(Decimal("10.00"), [entry(EntryKind.ISSUED, "10.00"), *entries])


@pytest.mark.parametrize(
    ("state", "status", "void", "charge", "write_off"),
    [
        pytest.param(ten(), BillStatus.PENDING, True, True, True, id="nothing paid yet"),
        pytest.param(
            ten(entry(EntryKind.CAPTURED, "4.00")),
            BillStatus.PENDING, False, True, True, id="partly paid",
        ),
        pytest.param(
            ten(entry(EntryKind.CAPTURED, "10.00")),
            BillStatus.PAID, False, False, False, id="paid",
        ),
        pytest.param(
            ten(entry(EntryKind.CAPTURED, "10.00"), entry(EntryKind.REFUNDED, "10.00")),
            BillStatus.PAID, False, False, False, id="paid, then refunded in full",
        ),
        pytest.param(
            ten(entry(EntryKind.CAPTURED, "10.00"), entry(EntryKind.CAPTURED, "10.00")),
            BillStatus.PAID, False, False, False, id="paid twice",
        ),
        pytest.param(
            ten(entry(EntryKind.WRITTEN_OFF, "10.00")),
            BillStatus.UNCOLLECTIBLE, True, True, False, id="written off, nothing paid",
        ),
        pytest.param(
            ten(entry(EntryKind.CAPTURED, "4.00"), entry(EntryKind.WRITTEN_OFF, "6.00")),
            BillStatus.UNCOLLECTIBLE, False, True, False, id="partly paid, the rest written off",
        ),
        pytest.param(
            ten(entry(EntryKind.WRITTEN_OFF, "10.00"), entry(EntryKind.CAPTURED, "10.00"),
                entry(EntryKind.WRITE_OFF_REVERSED, "10.00")),
            BillStatus.PAID, False, False, False, id="written off, then paid late",
        ),
        pytest.param(
            ten(entry(EntryKind.VOIDED, "0.00")),
            BillStatus.VOID, False, False, False, id="void",
        ),
        pytest.param(
            ten(entry(EntryKind.VOIDED, "0.00"), entry(EntryKind.CAPTURED, "10.00")),
            BillStatus.VOID, False, False, False, id="void, then paid (all excess)",
        ),
        pytest.param(
            bill_state(Decimal("0.00"), [entry(EntryKind.ISSUED, "0.00")]),
            BillStatus.PAID, False, False, False, id="0.00, paid when issued",
        ),
    ],
)  # fmt: skip
def test_what_may_happen(state, status, void, charge, write_off):
    assert state.status is status
    assert (can_void(state), can_charge(state), can_write_off(state)) == (void, charge, write_off)


def test_zero_bill_is_paid_at_once():
    state = bill_state(Decimal("0.00"), [entry(EntryKind.ISSUED, "0.00")])
    assert state.status is BillStatus.PAID
    assert not can_charge(state)
    assert not can_void(state)
    assert not can_write_off(state)


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        (
            [entry(EntryKind.CAPTURED, "4.00"), entry(EntryKind.REFUNDED, "5.00")],
            "more than the 4.00 captured",
        ),
        ([entry(EntryKind.WRITE_OFF_REVERSED, "1.00")], "reversed more write-off"),
        ([entry(EntryKind.CAPTURED, "-1.00")], ">= 0"),
    ],
)
def test_invariant_violations(entries, message):
    with pytest.raises(ValueError, match=message):
        bill_state(Decimal("10.00"), entries)


# --- Exhaustive: every sequence of up to three entries, every kind, small amounts ---------

AMOUNTS = ["0.00", "4.00", "10.00"]
ALL_ENTRIES = [entry(kind, amount) for kind in EntryKind for amount in AMOUNTS]


def spec(total: Decimal, entries: list[LedgerEntry]) -> BillState | None:
    """The rules as the brief states them, written as a table; None means ValueError."""

    def total_of(kind: EntryKind) -> Decimal:
        return sum((e.amount for e in entries if e.kind is kind), Decimal("0.00"))

    kinds = {e.kind for e in entries}
    paid, refunded = total_of(EntryKind.CAPTURED), total_of(EntryKind.REFUNDED)
    written_off = total_of(EntryKind.WRITTEN_OFF) - total_of(EntryKind.WRITE_OFF_REVERSED)
    if refunded > paid or written_off < 0:
        return None
    owed = Decimal(0) if EntryKind.VOIDED in kinds else total
    if EntryKind.VOIDED in kinds:
        status, due = BillStatus.VOID, Decimal(0)
    elif paid >= total:
        status, due = BillStatus.PAID, Decimal(0)
    elif written_off > 0:
        status, due = BillStatus.UNCOLLECTIBLE, total - paid
    else:
        status, due = BillStatus.PENDING, total - paid
    return BillState(
        status=status,
        total=total,
        amount_paid=paid,
        amount_refunded=refunded,
        amount_due=due,
        refundable=paid - refunded,
        written_off=written_off,
        excess=max(Decimal("0.00"), paid - refunded - owed),
    )


def every_ledger():
    for size in range(4):
        yield from itertools.product(ALL_ENTRIES, repeat=size)


@pytest.mark.parametrize("total", [Decimal("0.00"), Decimal("10.00")])
def test_every_short_ledger(total):
    outcomes: dict[BillStatus | None, int] = {}
    for ledger in every_ledger():
        expected = spec(total, list(ledger))
        if expected is None:
            with pytest.raises(ValueError):  # noqa: PT011 - which invariant is checked above
                bill_state(total, ledger)
            outcomes[None] = outcomes.get(None, 0) + 1
            continue
        state = bill_state(total, ledger)
        assert state == expected, ledger
        # Order never matters: the ledger is a multiset of movements.
        assert bill_state(total, reversed(ledger)) == state
        # What the rules promise on every ledger (their cases are in test_what_may_happen).
        if can_void(state):
            assert state.amount_paid == 0
            assert state.status is not BillStatus.VOID
        if can_charge(state) or can_write_off(state):
            assert state.amount_due > 0
        if can_write_off(state):
            assert can_charge(state)
            assert state.status is BillStatus.PENDING
        outcomes[state.status] = outcomes.get(state.status, 0) + 1
    # Every outcome is reached, so the table above is really exercised.
    reachable = {None, BillStatus.PAID, BillStatus.VOID} | (
        {BillStatus.PENDING, BillStatus.UNCOLLECTIBLE} if total > 0 else set()
    )
    assert set(outcomes) == reachable


# --- Random legal histories: what the sagas may do never breaks an invariant ------------

OPS = st.lists(
    st.tuples(st.sampled_from(["capture", "refund", "write_off", "void"]), st.integers(1, 10_000)),
    max_size=12,
)


@settings(max_examples=300)
@given(total_cents=st.integers(0, 100_000), ops=OPS)
def test_legal_histories_keep_invariants(total_cents, ops):
    total = Decimal(total_cents).scaleb(-2)
    ledger = [LedgerEntry(kind=EntryKind.ISSUED, amount=total)]
    state = bill_state(total, ledger)
    for op, cents in ops:
        amount = Decimal(cents).scaleb(-2)
        if op == "capture" and can_charge(state):
            ledger.append(
                LedgerEntry(kind=EntryKind.CAPTURED, amount=min(amount, state.amount_due))
            )
        elif op == "refund" and state.refundable > 0:
            ledger.append(
                LedgerEntry(kind=EntryKind.REFUNDED, amount=min(amount, state.refundable))
            )
        elif op == "write_off" and can_write_off(state):
            ledger.append(LedgerEntry(kind=EntryKind.WRITTEN_OFF, amount=state.amount_due))
        elif op == "void" and can_void(state):
            ledger.append(LedgerEntry(kind=EntryKind.VOIDED, amount=total))
        before, state = state, bill_state(total, ledger)
        assert state.amount_paid <= total
        assert 0 <= state.refundable == state.amount_paid - state.amount_refunded
        assert state.amount_paid >= before.amount_paid
        if state.status in (BillStatus.PENDING, BillStatus.UNCOLLECTIBLE):
            assert state.amount_due == total - state.amount_paid > 0
        else:
            assert state.amount_due == 0
        if before.status in (BillStatus.PAID, BillStatus.VOID):
            assert state.status is before.status  # terminal


def test_a_second_capture_is_held_as_excess_until_refunded():
    issued = entry(EntryKind.ISSUED, "10.00")
    twice = [issued, entry(EntryKind.CAPTURED, "10.00"), entry(EntryKind.CAPTURED, "10.00")]
    state = bill_state(Decimal("10.00"), twice)
    assert (state.status, state.excess, state.amount_due) == (
        BillStatus.PAID,
        Decimal("10.00"),
        Decimal("0.00"),
    )
    refunded = bill_state(Decimal("10.00"), [*twice, entry(EntryKind.REFUNDED, "10.00")])
    assert refunded.excess == Decimal("0.00")


def test_money_after_a_void_is_all_excess():
    state = bill_state(
        Decimal("10.00"),
        [entry(EntryKind.VOIDED, "0.00"), entry(EntryKind.CAPTURED, "10.00")],
    )
    assert (state.status, state.excess) == (BillStatus.VOID, Decimal("10.00"))


def test_a_late_payment_reverses_the_write_off():
    wrote_off = [entry(EntryKind.ISSUED, "10.00"), entry(EntryKind.WRITTEN_OFF, "10.00")]
    assert bill_state(Decimal("10.00"), wrote_off).status is BillStatus.UNCOLLECTIBLE
    late = [
        *wrote_off,
        entry(EntryKind.CAPTURED, "10.00"),
        entry(EntryKind.WRITE_OFF_REVERSED, "10.00"),
    ]
    state = bill_state(Decimal("10.00"), late)
    assert (state.status, state.written_off) == (BillStatus.PAID, Decimal("0.00"))


def test_sums_by_kind_fold_as_their_entries_do():
    """The revenue report folds per-kind sums from SQL: a kind present is an entry of it."""
    entries = [
        entry(EntryKind.CAPTURED, "4.00"),
        entry(EntryKind.CAPTURED, "6.00"),
        entry(EntryKind.REFUNDED, "1.00"),
        entry(EntryKind.WRITTEN_OFF, "10.00"),
        entry(EntryKind.WRITE_OFF_REVERSED, "10.00"),
    ]
    sums = {
        EntryKind.CAPTURED: Decimal("10.00"),
        EntryKind.REFUNDED: Decimal("1.00"),
        EntryKind.WRITTEN_OFF: Decimal("10.00"),
        EntryKind.WRITE_OFF_REVERSED: Decimal("10.00"),
    }
    total = Decimal("10.00")
    assert state_from_totals(total, sums) == bill_state(total, entries)
    # A void carries no amount: its presence is what counts.
    voided = state_from_totals(total, {EntryKind.VOIDED: Decimal(0)})
    assert (voided.status, voided.amount_due) == (BillStatus.VOID, Decimal("0.00"))
    assert state_from_totals(total, {}).status is BillStatus.PENDING
    with pytest.raises(ValueError, match=">= 0"):
        state_from_totals(total, {EntryKind.CAPTURED: Decimal("-1.00")})


def test_a_late_payment_reverses_as_much_write_off_as_it_covers():
    written_off = [entry(EntryKind.ISSUED, "10.00"), entry(EntryKind.WRITTEN_OFF, "10.00")]
    partly = bill_state(Decimal("10.00"), [*written_off, entry(EntryKind.CAPTURED, "4.00")])
    assert write_off_reversal(partly, Decimal("4.00")) == Decimal("4.00")
    more = bill_state(
        Decimal("10.00"),
        [entry(EntryKind.ISSUED, "10.00"), entry(EntryKind.CAPTURED, "4.00"),
         entry(EntryKind.WRITTEN_OFF, "6.00"), entry(EntryKind.CAPTURED, "10.00")],
    )  # fmt: skip
    assert write_off_reversal(more, Decimal("10.00")) == Decimal("6.00")
