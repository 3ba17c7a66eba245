"""Worker interceptor: each activity runs with its workflow, customer and bill ids bound.

So every log line an activity (or a library under it) writes carries them, without a
log call having to pass them.
"""

from __future__ import annotations

from typing import Any

from temporalio import activity
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)

from observability.logs import bound

# Input fields that hold another message with the ids (`RecordAttemptInput.outcome`,
# `ChargeAndRecordInput.charge`).
_NESTED = ("outcome", "charge")


def _ids(arg: Any) -> dict[str, str | None]:
    """customer_id / bill_id from the activity's one input model, or from a nested one."""
    found: dict[str, str | None] = {}
    for source in (arg, *(getattr(arg, field, None) for field in _NESTED)):
        for name in ("customer_id", "bill_id"):
            value = getattr(source, name, None)
            if isinstance(value, str) and name not in found:
                found[name] = value
    return found


class _BindActivityIds(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        ids = _ids(input.args[0]) if input.args else {}
        with bound(workflow_id=activity.info().workflow_id, **ids):
            return await super().execute_activity(input)


class LogContextInterceptor(Interceptor):
    """Binds the log context of every activity this worker runs."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _BindActivityIds(next)
