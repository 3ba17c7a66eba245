"""The service's Prometheus series, in one registry that `/metrics` serves.

Labels are bounded sets (outcome, method, tier, currency, route template), never an id:
a customer id as a label would make one series per customer. Money is counted in
integer minor units (cents), so a float counter still adds it exactly.
"""

from __future__ import annotations

import collections
import re
from collections.abc import Iterable
from decimal import Decimal

from prometheus_client import (
    CollectorRegistry,
    Counter,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)

from billing.money import minor_unit

REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)
GCCollector(registry=REGISTRY)

USAGE_EVENTS = Counter(
    "billing_usage_events",
    "Usage events by outcome: accepted, duplicate or refused (with the reason).",
    ["outcome", "reason"],
    registry=REGISTRY,
)
LIMITER_DECISIONS = Counter(
    "billing_rate_limit_decisions",
    "Hourly API-call limiter decisions: allowed, limited, or Redis unreachable.",
    ["decision", "tier"],
    registry=REGISTRY,
)
CHARGES = Counter(
    "billing_charges",
    "Recorded charge attempts by outcome and payment method.",
    ["outcome", "method"],
    registry=REGISTRY,
)
DUNNING_ATTEMPTS = Counter(
    "billing_dunning_attempts",
    "Charge attempts after the first of a bill (dunning retries), by final outcome.",
    ["outcome"],
    registry=REGISTRY,
)
DUNNING_EXHAUSTED = Counter(
    "billing_dunning_exhausted",
    "Bills whose dunning ran out: the customer downgraded or suspended.",
    ["action"],
    registry=REGISTRY,
)
REFUNDS = Counter(
    "billing_refunds",
    "Refunds by outcome: succeeded, refused (above what is refundable), released.",
    ["outcome"],
    registry=REGISTRY,
)
REVENUE_COLLECTED = Counter(
    "billing_revenue_collected_minor_units",
    "Money captured, in minor units of its currency (cents for USD).",
    ["currency", "method", "tier"],
    registry=REGISTRY,
)
REVENUE_REFUNDED = Counter(
    "billing_revenue_refunded_minor_units",
    "Money refunded, in minor units of its currency.",
    ["currency"],
    registry=REGISTRY,
)
HTTP_REQUESTS = Histogram(
    "billing_http_request_duration_seconds",
    "API requests by method, route template and status code.",
    ["method", "route", "status"],
    registry=REGISTRY,
)

# The usage statuses of api.routes.usage, as (outcome, reason) labels.
_USAGE_LABELS = {
    "inserted": ("accepted", ""),
    "duplicate": ("duplicate", ""),
    "billed": ("refused", "period_billed"),
    "rate_limited": ("refused", "rate_limited"),
    "unknown_customer": ("refused", "unknown_customer"),
}
_ATTEMPT = re.compile(r"-attempt-(\d+)$")


def minor_units(amount: Decimal, currency: str) -> int:
    """Exact: amounts are already rounded to the currency's minor unit."""
    return int(amount.scaleb(minor_unit(currency)).to_integral_value())


def usage_events(statuses: Iterable[str], *, count: int = 1) -> None:
    """Count each event's status once (a batch passes every status of its events)."""
    # One labels() lookup per distinct status, not per event: a batch has 1,000 events.
    for status, times in collections.Counter(statuses).items():
        USAGE_EVENTS.labels(*_USAGE_LABELS[status]).inc(count * times)


def limiter_decision(decision: str, tier: str) -> None:
    LIMITER_DECISIONS.labels(decision, tier).inc()


def charge_recorded(outcome: str, method: str | None, idempotency_key: str) -> None:
    """One recorded attempt; attempts past the first of a saga are dunning retries."""
    CHARGES.labels(outcome, method or "none").inc()
    found = _ATTEMPT.search(idempotency_key)
    if outcome != "pending" and found is not None and int(found.group(1)) > 1:
        DUNNING_ATTEMPTS.labels(outcome).inc()


def revenue_collected(amount: Decimal, currency: str, method: str | None, tier: str) -> None:
    REVENUE_COLLECTED.labels(currency, method or "none", tier).inc(minor_units(amount, currency))


def refund(outcome: str, amount: Decimal | None = None, currency: str = "USD") -> None:
    REFUNDS.labels(outcome).inc()
    if amount is not None:
        REVENUE_REFUNDED.labels(currency).inc(minor_units(amount, currency))


def dunning_exhausted(action: str) -> None:
    DUNNING_EXHAUSTED.labels(action).inc()
