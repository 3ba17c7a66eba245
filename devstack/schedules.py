"""The Temporal Schedules in the Web UI: the monthly billing run, the daily reconciliation."""

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

from billing.reconciliation import ReconciliationInput
from config.settings import Settings
from workflows.billing_run import BillingRunWorkflow
from workflows.billing_run_messages import BillingRunInput
from workflows.reconciliation import ReconciliationWorkflow

SCHEDULE_ID = "billing-run-monthly"
# 03:00 UTC on the 1st: the month before has ended and late events have had a moment.
MONTHLY = "0 3 1 * *"

RECONCILIATION_SCHEDULE_ID = "reconciliation-daily"
# 04:00 UTC daily, after the billing run's hour; each run looks two days back, so a day
# missed (a skipped or failed run) is still covered by the next.
DAILY = "0 4 * * *"


def monthly_schedule(settings: Settings) -> Schedule:
    return Schedule(
        action=ScheduleActionStartWorkflow(
            BillingRunWorkflow.run,
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


def daily_reconciliation(settings: Settings) -> Schedule:
    return Schedule(
        action=ScheduleActionStartWorkflow(
            ReconciliationWorkflow.run,
            # No since, no request id: the last two days, a report named for the run.
            ReconciliationInput(),
            id=RECONCILIATION_SCHEDULE_ID,
            task_queue=settings.task_queue,
            static_summary="Daily reconciliation: the gateway's last two days against the ledger",
        ),
        spec=ScheduleSpec(cron_expressions=[DAILY]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )


async def _create(client: Client, schedule_id: str, schedule: Schedule) -> bool:
    try:
        await client.create_schedule(schedule_id, schedule)
    except ScheduleAlreadyRunningError:
        return False
    return True


async def ensure_schedules(client: Client, settings: Settings) -> bool:
    """Create each schedule once; True if this call created any."""
    monthly = await _create(client, SCHEDULE_ID, monthly_schedule(settings))
    daily = await _create(client, RECONCILIATION_SCHEDULE_ID, daily_reconciliation(settings))
    return monthly or daily
