"""The monthly billing-run Schedule on the real dev server."""

from __future__ import annotations

import contextlib
import uuid

from temporalio.client import Client, ScheduleActionStartWorkflow
from temporalio.service import RPCError

from billing.settings import Settings
from devstack.schedules import MONTHLY, SCHEDULE_ID, ensure_schedules


async def test_the_monthly_schedule_is_created_once(temporal_client: Client, settings: Settings):
    queue = settings.model_copy(update={"task_queue": f"sched-{uuid.uuid4().hex[:6]}"})
    handle = temporal_client.get_schedule_handle(SCHEDULE_ID)
    with contextlib.suppress(RPCError):
        await handle.delete()
    assert await ensure_schedules(temporal_client, queue) is True
    assert await ensure_schedules(temporal_client, queue) is False
    desc = await handle.describe()
    # The server keeps a cron expression as the calendar it stands for.
    assert desc.schedule.spec.cron_expressions == [MONTHLY] or desc.schedule.spec.calendars
    action = desc.schedule.action
    assert isinstance(action, ScheduleActionStartWorkflow)
    assert action.workflow == "BillingRunWorkflow"
