"""A stored bill as a saga sees it: the row of `store.bills` and the state its ledger folds to."""

from __future__ import annotations

import asyncpg

from activities.ledger_messages import BillRef
from billing.ledger import BillState


def bill_ref(bill: asyncpg.Record, state: BillState) -> BillRef:
    return BillRef(
        bill_id=bill["id"],
        customer_id=bill["customer_id"],
        period=bill["period"],
        kind=bill["kind"],
        tier=bill["tier"],
        total=bill["total"],
        currency=bill["currency"],
        status=state.status.value,
        amount_due=state.amount_due,
        excess=state.excess,
    )
