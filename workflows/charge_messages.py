"""ChargeWorkflow's input, result and `retry_now` signal (its `settle` signal carries the
gateway activities' `Settlement`)."""

from __future__ import annotations

from typing import Literal

from activities.config_messages import ChargePolicy
from activities.gateway_messages import AttemptOutcome
from activities.ledger_messages import BillRef
from billing.messages import Message


class Handoff(Message):
    """What a billing cycle did for its bill before it started the bill's charge saga.

    It issued the bill and read the policy, so the saga reads neither again; it may have
    made the first attempt itself (attempt 1 of the saga's keys): `first` is what that came
    to (`unknown` when its answers stayed lost), `attempts` what it counted, and `bill` the
    bill after `first` was recorded (None when nothing was recorded).
    """

    policy: ChargePolicy
    first: AttemptOutcome | None = None
    attempts: int = 0
    bill: BillRef | None = None


class ChargeInput(Message):
    bill_id: str
    customer_id: str
    # False for an upgrade's charge: one try (plus activity retries), then compensate.
    dunning: bool = True
    # Set by the billing cycle that started this saga: what it already did for the bill.
    handoff: Handoff | None = None


class ChargeResult(Message):
    bill_id: str
    outcome: Literal["paid", "uncollectible", "failed", "not_due"]
    attempts: int
    message: str = ""


class RetryNow(Message):
    reason: str = "pay now"
    # The request that asked (its Idempotency-Key, or a fresh id): the same one twice is
    # one try, a new one another.
    request_id: str | None = None
