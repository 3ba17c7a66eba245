"""A billing run tags each child cycle with its customer's tier (the `Tier` search
attribute): the page of billable customers it reads carries every customer's tier."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from activities.customers import CustomerActivities
from activities.customers_messages import ListCustomersInput
from billing.catalog import Tier
from billing.periods import period_of, previous_period

PERIOD = previous_period(period_of(datetime.now(UTC)))


async def test_a_page_of_billable_customers_carries_each_customers_tier(db_pool):
    customer_id = f"cus_t{uuid.uuid4().hex[:10]}"
    await db_pool.execute(
        "INSERT INTO customers (id, name, email, tier, tax_rate, api_key_hash, started_at)"
        " VALUES ($1, 'Tiers', 'tiers@example.com', 'professional', 0, $1,"
        " now() - interval '400 days')",
        customer_id,
    )
    # The page that starts right before this customer, one long: exactly this customer.
    before = await db_pool.fetchval("SELECT max(id) FROM customers WHERE id < $1", customer_id)
    page = await CustomerActivities(db_pool).list_billable_customers(
        ListCustomersInput(period=PERIOD, after=before, limit=1)
    )
    assert page.customer_ids == [customer_id]
    assert page.tiers == {customer_id: Tier.PROFESSIONAL}
