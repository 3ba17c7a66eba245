"""Issuing bills: the draft from `billing.bills`, stored once per key with its `issued`
ledger entry and its `bill.created` event, in the caller's transaction."""

from __future__ import annotations

import secrets
from typing import Any

from temporalio.exceptions import ApplicationError

from activities.ledger_messages import (
    BillRef,
    IssueCycleBillInput,
    IssueCycleBillResult,
    IssueUpgradeBillInput,
)
from billing.bills import BillDraft, UsageAggregate, build_cycle_bill, build_upgrade_bill
from billing.catalog import ContractOverrides, PriceCatalog, Tier, UsageKind
from billing.events import EventType
from billing.ledger import EntryKind
from billing.periods import period_bounds, subscribed_during
from store import bills as sql
from store import customers, tiers, usage
from store.bill_views import emit_bill, load_state
from store.db import Conn

from .bill_ref import bill_ref


def new_bill_id() -> str:
    return "bill_" + secrets.token_hex(8)


def bill_values(draft: BillDraft, **extra: Any) -> dict[str, Any]:
    return {
        "period": draft.period,
        "tier": draft.tier.value,
        "currency": draft.currency,
        "lines": [line.model_dump(mode="json") for line in draft.lines],
        "subtotal": draft.subtotal,
        "tax": draft.tax,
        "total": draft.total,
        **extra,
    }


async def issue(conn: Conn, values: dict[str, Any]) -> BillRef:
    """Store the bill once per idempotency key, with its `issued` entry and event."""
    await sql.insert_bill(conn, values)
    bill = await conn.fetchrow(sql.FIND_BILL_BY_KEY, values["idempotency_key"])
    assert bill is not None
    await sql.add_entry(
        conn,
        key=f"issued-{bill['id']}",
        bill_id=bill["id"],
        customer_id=bill["customer_id"],
        kind=EntryKind.ISSUED.value,
        amount=bill["total"],
        currency=bill["currency"],
        memo=f"{bill['kind']} bill for {bill['period']}",
    )
    await emit_bill(conn, EventType.BILL_CREATED, bill["id"])
    return bill_ref(bill, await load_state(conn, bill))


async def issue_cycle(
    conn: Conn, catalog: PriceCatalog, req: IssueCycleBillInput
) -> IssueCycleBillResult:
    """The period's bill, built from its usage under the period lock; a second call
    answers the first bill."""
    await sql.lock_period(conn, req.customer_id, req.period)
    existing = await conn.fetchrow(sql.FIND_CYCLE_BILL, req.customer_id, req.period)
    if existing is not None:
        return IssueCycleBillResult(bill=bill_ref(existing, await load_state(conn, existing)))
    customer = await conn.fetchrow(customers.GET_CUSTOMER, req.customer_id)
    if customer is None:
        raise ApplicationError(f"no customer {req.customer_id}", non_retryable=True)
    if not subscribed_during(req.period, customer["started_at"]):
        return IssueCycleBillResult(bill=None, reason="subscription began after the period")
    start, _ = period_bounds(req.period)
    tier = await conn.fetchval(tiers.TIER_AT, req.customer_id, max(start, customer["started_at"]))
    groups = await conn.fetch(usage.USAGE_GROUPS, req.customer_id, req.period)
    draft = build_cycle_bill(
        catalog=catalog,
        period=req.period,
        tier=Tier(tier or customer["tier"]),
        tax_rate=customer["tax_rate"],
        usage=[
            UsageAggregate(
                kind=UsageKind(g["kind"]), unit_price=g["unit_price"], quantity=g["quantity"]
            )
            for g in groups
        ],
        started_at=customer["started_at"],
        overrides=ContractOverrides.model_validate(customer["overrides"] or {}),
    )
    values = bill_values(
        draft,
        id=new_bill_id(),
        customer_id=req.customer_id,
        kind="cycle",
        workflow_id=req.workflow_id,
        idempotency_key=f"cycle-{req.customer_id}-{req.period}",
    )
    return IssueCycleBillResult(bill=await issue(conn, values))


async def issue_upgrade(conn: Conn, catalog: PriceCatalog, req: IssueUpgradeBillInput) -> BillRef:
    """The prorated base-fee difference for the rest of the month, once per key."""
    existing = await conn.fetchrow(sql.FIND_BILL_BY_KEY, req.idempotency_key)
    if existing is not None:
        return bill_ref(existing, await load_state(conn, existing))
    customer = await conn.fetchrow(customers.GET_CUSTOMER, req.customer_id)
    assert customer is not None
    draft = build_upgrade_bill(
        catalog=catalog,
        from_tier=Tier(req.from_tier),
        to_tier=Tier(req.to_tier),
        at=req.at,
        tax_rate=customer["tax_rate"],
    )
    values = bill_values(
        draft,
        id=new_bill_id(),
        customer_id=req.customer_id,
        kind="upgrade",
        workflow_id=req.workflow_id,
        idempotency_key=req.idempotency_key,
    )
    return await issue(conn, values)
