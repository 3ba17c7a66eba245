"""What `ConfigActivities.charge_policy` answers: the worker's settings a saga fixes in history."""

from __future__ import annotations

from datetime import timedelta

from billing.messages import Message
from config.settings import DunningExhaustedAction


class ChargePolicy(Message):
    """Read once per saga from the worker's settings, then fixed in history."""

    dunning_delays: list[timedelta]
    bank_transfer_deadline: timedelta
    dunning_exhausted_action: DunningExhaustedAction
    billing_run_concurrency: int
    billing_run_page_size: int
    # How long a gateway call is retried under one key before look-ups take over.
    gateway_retry_budget: timedelta = timedelta(minutes=5)
