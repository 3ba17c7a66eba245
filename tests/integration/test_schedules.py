"""The monthly billing-run and daily reconciliation Schedules on the real dev server."""

from __future__ import annotations

import contextlib
import uuid

from temporalio.client import Client, ScheduleActionStartWorkflow, ScheduleOverlapPolicy
from temporalio.service import RPCError

from config.settings import Settings
from devstack.schedules import (
    DAILY,
    MONTHLY,
    RECONCILIATION_SCHEDULE_ID,
    SCHEDULE_ID,
    ensure_schedules,
)


async def test_the_schedules_are_created_once(temporal_client: Client, settings: Settings):
    queue = settings.model_copy(update={"task_queue": f"sched-{uuid.uuid4().hex[:6]}"})
    handles = {
        schedule_id: temporal_client.get_schedule_handle(schedule_id)
        for schedule_id in (SCHEDULE_ID, RECONCILIATION_SCHEDULE_ID)
    }
    for handle in handles.values():
        with contextlib.suppress(RPCError):
            await handle.delete()
    assert await ensure_schedules(temporal_client, queue) is True
    assert await ensure_schedules(temporal_client, queue) is False
    expected = {
        SCHEDULE_ID: (MONTHLY, "BillingRunWorkflow"),
        RECONCILIATION_SCHEDULE_ID: (DAILY, "ReconciliationWorkflow"),
    }
    for schedule_id, (cron, workflow) in expected.items():
        desc = await handles[schedule_id].describe()
        # The server keeps a cron expression as the calendar it stands for.
        assert desc.schedule.spec.cron_expressions == [cron] or desc.schedule.spec.calendars
        action = desc.schedule.action
        assert isinstance(action, ScheduleActionStartWorkflow)
        assert action.workflow == workflow
        assert desc.schedule.policy.overlap == ScheduleOverlapPolicy.SKIP


async def test_a_missing_daily_schedule_is_added_beside_the_monthly(
    temporal_client: Client, settings: Settings
):
    queue = settings.model_copy(update={"task_queue": f"sched-{uuid.uuid4().hex[:6]}"})
    await ensure_schedules(temporal_client, queue)
    daily = temporal_client.get_schedule_handle(RECONCILIATION_SCHEDULE_ID)
    await daily.delete()
    assert await ensure_schedules(temporal_client, queue) is True
    desc = await daily.describe()
    assert isinstance(desc.schedule.action, ScheduleActionStartWorkflow)
    assert desc.schedule.action.workflow == "ReconciliationWorkflow"
