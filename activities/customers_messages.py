"""What the customer activities (`CustomerActivities`) take and answer, on the wire."""

from __future__ import annotations

from datetime import datetime

from billing.catalog import Tier
from billing.messages import Message
from config.settings import DunningExhaustedAction


class CustomerKey(Message):
    customer_id: str


class CustomerSnapshot(Message):
    customer_id: str
    tier: Tier
    status: str
    auto_upgrade: bool
    currency: str


class ChangeTierInput(Message):
    """Idempotent by `idempotency_key`: a retried step changes the tier once."""

    customer_id: str
    to_tier: Tier
    reason: str
    workflow_id: str
    idempotency_key: str
    at: datetime
    disable_auto_upgrade: bool = False


class ChangeTierResult(Message):
    customer_id: str
    from_tier: Tier
    to_tier: Tier


class DunningExhaustedInput(Message):
    customer_id: str
    bill_id: str
    workflow_id: str
    action: DunningExhaustedAction
    at: datetime


class TierToRestore(Message):
    tier: Tier | None


class ListCustomersInput(Message):
    period: str
    after: str | None = None
    limit: int = 500


class CustomerPage(Message):
    customer_ids: list[str]
    next_after: str | None
    # Each customer's current tier, for the children's `Tier` search attribute.
    tiers: dict[str, Tier] = {}
