"""Activities over customers: read, change tier (idempotently), page through the billable."""

from __future__ import annotations

import asyncpg
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.customers_messages import (
    ChangeTierInput,
    ChangeTierResult,
    CustomerKey,
    CustomerPage,
    CustomerSnapshot,
    DunningExhaustedInput,
    ListCustomersInput,
    TierToRestore,
)
from activities.ledger_messages import BillKey
from billing.catalog import Tier
from billing.events import EventType
from billing.periods import period_bounds
from observability import metrics
from store import bills as bills_sql
from store import customers as customer_store
from store import tiers as sql
from store.outbox import emit


class CustomerActivities:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    @activity.defn
    async def get_customer(self, req: CustomerKey) -> CustomerSnapshot:
        row = await self.pool.fetchrow(customer_store.GET_CUSTOMER, req.customer_id)
        if row is None:
            raise ApplicationError(f"no customer {req.customer_id}", non_retryable=True)
        return CustomerSnapshot(
            customer_id=row["id"],
            tier=row["tier"],
            status=row["status"],
            auto_upgrade=row["auto_upgrade"],
            currency=row["currency"],
        )

    @activity.defn
    async def change_tier(self, req: ChangeTierInput) -> ChangeTierResult:
        """Set the tier once per key; a retry answers what the first try did."""
        async with self.pool.acquire() as conn, conn.transaction():
            customer = await conn.fetchrow(customer_store.GET_CUSTOMER_FOR_UPDATE, req.customer_id)
            if customer is None:
                raise ApplicationError(f"no customer {req.customer_id}", non_retryable=True)
            done = await conn.fetchrow(sql.TIER_CHANGE_BY_KEY, req.idempotency_key)
            if done is not None:
                return ChangeTierResult(
                    customer_id=req.customer_id,
                    from_tier=done["from_tier"],
                    to_tier=done["to_tier"],
                )
            await conn.execute(
                sql.INSERT_TIER_CHANGE,
                req.customer_id,
                customer["tier"],
                req.to_tier,
                req.reason,
                req.workflow_id,
                req.at,
                req.idempotency_key,
            )
            await conn.execute(sql.SET_TIER, req.customer_id, req.to_tier, req.disable_auto_upgrade)
            if req.reason == "dunning: downgrade":  # dunning's downgrade, as a tier change
                metrics.dunning_exhausted("downgrade")
            if customer["tier"] != req.to_tier:
                row = await customer_store.get_customer(conn, req.customer_id)
                assert row is not None
                await emit(
                    conn,
                    type=EventType.CUSTOMER_TIER_CHANGED,
                    customer_id=req.customer_id,
                    data={
                        **customer_store.customer_event_data(row),
                        "previous_tier": customer["tier"],
                        "reason": req.reason,
                        "effective_at": req.at,
                    },
                )
            return ChangeTierResult(
                customer_id=req.customer_id, from_tier=customer["tier"], to_tier=req.to_tier
            )

    @activity.defn
    async def dunning_exhausted(self, req: DunningExhaustedInput) -> ChangeTierResult:
        """Downgrade to free (or suspend, per settings) a customer whose bill went uncollectible."""
        metrics.dunning_exhausted(req.action)
        if req.action == "suspend":
            await self.pool.execute(sql.SET_STATUS, req.customer_id, "suspended")
            row = await self.pool.fetchrow(customer_store.GET_CUSTOMER, req.customer_id)
            assert row is not None
            return ChangeTierResult(
                customer_id=req.customer_id, from_tier=row["tier"], to_tier=row["tier"]
            )
        return await self.change_tier(
            ChangeTierInput(
                customer_id=req.customer_id,
                to_tier="free",
                reason=f"dunning exhausted on {req.bill_id}",
                workflow_id=req.workflow_id,
                idempotency_key=f"{req.workflow_id}-dunning-downgrade",
                at=req.at,
                # Else the spent conversion id would leave it limited as starter, for free.
                disable_auto_upgrade=True,
            )
        )

    @activity.defn
    async def tier_to_restore(self, req: BillKey) -> TierToRestore:
        """The tier dunning took for this bill, if that downgrade is still the latest change."""
        async with self.pool.acquire() as conn:
            customer_id = await conn.fetchval(bills_sql.BILL_CUSTOMER_ID, req.bill_id)
            if customer_id is None:
                return TierToRestore(tier=None)
            latest = await conn.fetchrow(sql.LATEST_TIER_CHANGE, customer_id)
        took_it = latest is not None and (
            latest["idempotency_key"] == f"upgrade-{customer_id}-dunning-{req.bill_id}-downgrade"
            or latest["reason"] == f"dunning exhausted on {req.bill_id}"  # sagas from before
        )
        return TierToRestore(tier=latest["from_tier"] if took_it and latest else None)

    @activity.defn
    async def list_billable_customers(self, req: ListCustomersInput) -> CustomerPage:
        """One page of customers subscribed before the period ended, in id order."""
        _, end = period_bounds(req.period)
        rows = await self.pool.fetch(sql.BILLABLE_CUSTOMERS, end, req.after, req.limit)
        ids = [r["id"] for r in rows]
        return CustomerPage(
            customer_ids=ids,
            next_after=ids[-1] if len(ids) == req.limit else None,
            tiers={r["id"]: Tier(r["tier"]) for r in rows},
        )
