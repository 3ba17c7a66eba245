"""The Temporal Schedule that bills every customer each month, visible in the Web UI."""

from __future__ import annotations

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
)

from billing.messages import BillingRunInput
from billing.settings import Settings

SCHEDULE_ID = "billing-run-monthly"
# 03:00 UTC on the 1st: the month before has ended and late events have had a moment.
MONTHLY = "0 3 1 * *"


def monthly_schedule(settings: Settings) -> Schedule:
    return Schedule(
        action=ScheduleActionStartWorkflow(
            "BillingRunWorkflow",
            # No period: the run bills the month before the one it starts in.
            BillingRunInput(period=None),
            id="billing-run-monthly",
            task_queue=settings.task_queue,
            static_summary="Monthly billing run: bill every customer for last month",
        ),
        spec=ScheduleSpec(cron_expressions=[MONTHLY]),
        # A run still going when the next is due is left alone; the next waits.
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )


async def ensure_schedules(client: Client, settings: Settings) -> bool:
    """Create the monthly schedule once; True if this call created it."""
    try:
        await client.create_schedule(SCHEDULE_ID, monthly_schedule(settings))
    except ScheduleAlreadyRunningError:
        return False
    return True
