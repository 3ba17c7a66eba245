"""ChargeWorkflow's input, result and `retry_now` signal (its `settle` signal carries the
gateway activities' `Settlement`)."""

from __future__ import annotations

from typing import Literal

from billing.messages import Message


class ChargeInput(Message):
    bill_id: str
    customer_id: str
    # False for an upgrade's charge: one try (plus activity retries), then compensate.
    dunning: bool = True


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
