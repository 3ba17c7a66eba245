"""Activity timeouts and retry policies, in one place so every saga retries alike."""

from __future__ import annotations

from datetime import timedelta
from typing import TypedDict

from temporalio.common import RetryPolicy

from activities.gateway import CHARGE_IN_FLIGHT, GATEWAY_REFUSED
from activities.refunds import REFUND_REFUSED
from billing.errors import InvalidInput

# Business refusals: retrying cannot change the answer. The one list of them, made of the
# types the activities raise (a domain InvalidInput reaches a workflow typed by its class).
NON_RETRYABLE_ERROR_TYPES = [
    REFUND_REFUSED,
    GATEWAY_REFUSED,
    InvalidInput.__name__,
    CHARGE_IN_FLIGHT,
]


class ActivityOptions(TypedDict, total=False):
    """Typed so that `**DB` type-checks against `execute_activity_method`."""

    start_to_close_timeout: timedelta
    schedule_to_close_timeout: timedelta
    retry_policy: RetryPolicy


# Postgres steps: idempotent by key, so retry until the database is back.
DB: ActivityOptions = {
    "start_to_close_timeout": timedelta(seconds=30),
    "retry_policy": RetryPolicy(
        initial_interval=timedelta(milliseconds=200),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(seconds=10),
        non_retryable_error_types=NON_RETRYABLE_ERROR_TYPES,
    ),
}

# Gateway calls: the same idempotency key on every try, so a retry never charges twice.
# Bounded by GATEWAY_RETRY_BUDGET (`gateway_options`); after it the saga looks the key up.
GATEWAY: ActivityOptions = {
    "start_to_close_timeout": timedelta(seconds=20),
    "schedule_to_close_timeout": timedelta(minutes=5),
    "retry_policy": RetryPolicy(
        initial_interval=timedelta(seconds=1),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(seconds=30),
        maximum_attempts=6,
        non_retryable_error_types=NON_RETRYABLE_ERROR_TYPES,
    ),
}


def gateway_options(budget: timedelta) -> ActivityOptions:
    """GATEWAY, with the retry budget the worker's settings give (read once per saga)."""
    return {**GATEWAY, "schedule_to_close_timeout": budget}


# Look-ups by key: the only way to learn an unknown outcome, so they never give up; the
# backoff keeps a gateway that is down for days from being asked more than once a minute.
LOOKUP: ActivityOptions = {
    "start_to_close_timeout": timedelta(seconds=30),
    "retry_policy": RetryPolicy(
        initial_interval=timedelta(seconds=1),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(seconds=60),
        non_retryable_error_types=NON_RETRYABLE_ERROR_TYPES,
    ),
}
