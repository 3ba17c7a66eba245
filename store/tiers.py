"""Named SQL for what the sagas read and change on a customer: tier, status, billing terms.

The customer itself is read by `store.customers.GET_CUSTOMER`.
"""

from __future__ import annotations

TIER_CHANGE_BY_KEY = "SELECT from_tier, to_tier FROM tier_changes WHERE idempotency_key = $1::text"

INSERT_TIER_CHANGE = """
INSERT INTO tier_changes (customer_id, from_tier, to_tier, reason, workflow_id, effective_at,
                          idempotency_key)
VALUES ($1::text, $2::text, $3::text, $4::text, $5::text, $6::timestamptz, $7::text)"""

SET_TIER = """
UPDATE customers SET tier = $2::text,
    auto_upgrade = CASE WHEN $3::boolean THEN false ELSE auto_upgrade END
WHERE id = $1::text"""

SET_STATUS = "UPDATE customers SET status = $2::text WHERE id = $1::text"

TIER_AT = """
SELECT to_tier FROM tier_changes
WHERE customer_id = $1::text AND effective_at <= $2::timestamptz
ORDER BY effective_at DESC, id DESC LIMIT 1"""

# Customers who owe a bill for a period: subscribed before it ended, in id order for paging.
BILLABLE_CUSTOMERS = """
SELECT id, tier FROM customers
WHERE started_at < $1::timestamptz AND ($2::text IS NULL OR id > $2::text)
ORDER BY id LIMIT $3::int"""

DEFAULT_PAYMENT_METHOD = """
SELECT id, type, token FROM payment_methods
WHERE customer_id = $1::text AND NOT (id = ANY($2::text[]))
ORDER BY created_at DESC, id DESC LIMIT 1"""

PAYMENT_METHOD = "SELECT id, type, token FROM payment_methods WHERE id = $1::text"

LATEST_TIER_CHANGE = """
SELECT from_tier, to_tier, reason, idempotency_key FROM tier_changes
WHERE customer_id = $1::text ORDER BY effective_at DESC, id DESC LIMIT 1"""
