"""Compensation voids a bill only where `billing.ledger.can_void` allows it."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from activities.ledger import LedgerActivities
from activities.ledger_messages import IssueUpgradeBillInput, VoidBillInput
from billing.catalog import DEFAULT_CATALOG
from store.bill_views import bill_view
from store.customers import NewCustomer, create_customer

MONTH_END = datetime(2026, 12, 1, tzinfo=UTC)


async def _upgrade_bill(db_pool, at: datetime) -> tuple[LedgerActivities, str, str]:
    cid = "cus_" + secrets.token_hex(8)
    await create_customer(
        db_pool,
        NewCustomer(
            id=cid,
            name="Void Test",
            email=f"{cid}@example.com",
            tier="starter",
            auto_upgrade=False,
            tax_rate=Decimal(0),
            currency="USD",
            api_key_hash=secrets.token_hex(32),
            started_at=datetime(2026, 1, 1, tzinfo=UTC),
        ),
    )
    ledger = LedgerActivities(db_pool, DEFAULT_CATALOG)
    key = f"upgrade-{cid}-test-bill"
    bill = await ledger.issue_upgrade_bill(
        IssueUpgradeBillInput(
            customer_id=cid,
            from_tier="starter",
            to_tier="enterprise",
            at=at,
            workflow_id=f"upgrade-{cid}-test",
            idempotency_key=key,
        )
    )
    return ledger, key, bill.bill_id


async def _status(db_pool, bill_id: str) -> tuple[str, str, str | None]:
    async with db_pool.acquire() as conn:
        view = await bill_view(conn, bill_id)
    assert view is not None
    return view["status"], view["total"], view["void_reason"]


async def test_a_zero_bill_is_paid_when_issued_and_compensation_leaves_it_paid(db_pool):
    # An upgrade in the month's last microsecond prorates to 0.00: paid at issue, like a
    # paid bill it is never voided (can_void), though the upgrade saga compensates.
    ledger, key, bill_id = await _upgrade_bill(db_pool, MONTH_END - timedelta(microseconds=1))
    assert await _status(db_pool, bill_id) == ("paid", "0.00", None)
    await ledger.void_bill(VoidBillInput(idempotency_key=key, reason="upgrade charge failed"))
    assert await _status(db_pool, bill_id) == ("paid", "0.00", None)
    voided = "SELECT count(*) FROM ledger_entries WHERE bill_id = $1 AND kind = 'voided'"
    assert await db_pool.fetchval(voided, bill_id) == 0


async def test_an_unpaid_bill_is_voided_once_with_its_reason(db_pool):
    ledger, key, bill_id = await _upgrade_bill(db_pool, MONTH_END - timedelta(days=15))
    status, total, _ = await _status(db_pool, bill_id)
    assert (status, Decimal(total) > 0) == ("pending", True)
    for _ in range(2):  # a retried compensation voids once
        await ledger.void_bill(VoidBillInput(idempotency_key=key, reason="upgrade charge failed"))
    assert await _status(db_pool, bill_id) == ("void", total, "upgrade charge failed")
    voided = "SELECT count(*) FROM ledger_entries WHERE bill_id = $1 AND kind = 'voided'"
    assert await db_pool.fetchval(voided, bill_id) == 1
