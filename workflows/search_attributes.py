"""The four keyword search attributes the Web UI filters a customer's money flow by."""

from __future__ import annotations

from temporalio.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes

CUSTOMER_ID = SearchAttributeKey.for_keyword("CustomerId")
TIER = SearchAttributeKey.for_keyword("Tier")
BILL_ID = SearchAttributeKey.for_keyword("BillId")
BILLING_PERIOD = SearchAttributeKey.for_keyword("BillingPeriod")
# Outbound webhook deliveries, found by the endpoint they go to (set by the workflow itself).
WEBHOOK_ENDPOINT_ID = SearchAttributeKey.for_keyword("WebhookEndpointId")

ALL = (CUSTOMER_ID, TIER, BILL_ID, BILLING_PERIOD)


def search_attributes(
    *,
    customer_id: str | None = None,
    tier: str | None = None,
    bill_id: str | None = None,
    period: str | None = None,
) -> TypedSearchAttributes:
    """Absent values are left out rather than set empty."""
    values = (customer_id, tier, bill_id, period)
    return TypedSearchAttributes(
        [SearchAttributePair(k, v) for k, v in zip(ALL, values, strict=True) if v is not None]
    )
