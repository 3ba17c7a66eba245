"""UpgradeWorkflow's input and result (tier changes, one saga per change)."""

from __future__ import annotations

from typing import Literal

from billing.catalog import Tier
from billing.messages import Message

# Why a tier changes: a person asked, the free limit was crossed, dunning took it, or a
# late payment gave it back.
ChangeReason = Literal["auto_conversion", "manual", "dunning", "restore"]


class UpgradeInput(Message):
    """Change a customer's tier: up (prorated bill, charged) or down (no bill).

    `request_id` names the request (its Idempotency-Key, or a fresh id): every key the
    saga sends derives from it, so a new request is a new change. Empty in sagas started
    before it existed, whose keys derive from their workflow id.
    """

    customer_id: str
    target_tier: Tier
    reason: ChangeReason = "manual"
    request_id: str = ""


class UpgradeResult(Message):
    customer_id: str
    outcome: Literal["upgraded", "downgraded", "compensated", "unchanged"]
    from_tier: Tier
    to_tier: Tier
    bill_id: str | None = None
    message: str = ""
