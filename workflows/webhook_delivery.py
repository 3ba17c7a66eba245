"""WebhookDeliveryWorkflow: one event to one endpoint, at least once, on a durable schedule.

Attempt, and on failure wait the schedule's next delay (a durable timer: a worker killed
meanwhile changes nothing), until a 2xx answer, the endpoint being disabled or deleted,
or the schedule running out. Then the endpoint, if nothing reached it all that time, is
disabled with a `webhook_endpoint.disabled` event. Attempts run on their own task queue,
so a slow receiver holds no slot of a saga's worker.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.outbox import OutboxActivities
    from activities.webhook_delivery import WebhookDeliveryActivities
    from billing.outbound import (
        AttemptInput,
        AttemptOutcome,
        DeliveryInput,
        DeliveryResult,
        ExhaustedInput,
    )
    from workflows.options import DB
    from workflows.search_attributes import CUSTOMER_ID, WEBHOOK_ENDPOINT_ID
    from workflows.status import SagaWorkflow

# Only Postgres failing (or the worker dying) makes an attempt raise: retry until back.
# The receiver's own failures are outcomes, answered by the schedule below.
ATTEMPT_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=1),
)


@workflow.defn
class WebhookDeliveryWorkflow(SagaWorkflow):
    _timestamped = True  # each step says when the delivery last moved

    @workflow.run
    async def run(self, inp: DeliveryInput) -> DeliveryResult:
        updates = [WEBHOOK_ENDPOINT_ID.value_set(inp.endpoint_id)]
        if inp.customer_id is not None:
            updates.append(CUSTOMER_ID.value_set(inp.customer_id))
        workflow.upsert_search_attributes(updates)
        wf = workflow.info().workflow_id
        began = workflow.now()
        what = f"{inp.event_type} {inp.event_id} to {inp.endpoint_id}"
        attempts = len(inp.schedule) + 1
        for attempt in range(1, attempts + 1):
            next_delay = inp.schedule[attempt - 1] if attempt <= len(inp.schedule) else None
            self._step("attempting", f"attempt {attempt} of {attempts}: {what}")
            outcome: AttemptOutcome = await workflow.execute_activity_method(
                WebhookDeliveryActivities.attempt_delivery,
                AttemptInput(
                    event_id=inp.event_id,
                    endpoint_id=inp.endpoint_id,
                    workflow_id=wf,
                    attempt=attempt,
                    next_delay=next_delay,
                ),
                task_queue=inp.attempt_queue,
                start_to_close_timeout=inp.attempt_timeout,
                retry_policy=ATTEMPT_RETRY,
            )
            if outcome.result == "delivered":
                self._step("delivered", f"{what}: {outcome.status_code} on attempt {attempt}")
                return DeliveryResult(result="delivered", attempts=attempt)
            if outcome.result in ("endpoint_disabled", "endpoint_gone"):
                gone = outcome.result.removeprefix("endpoint_")
                self._step(outcome.result, f"{what}: not sent, the endpoint is {gone}")
                return DeliveryResult(result=outcome.result, attempts=attempt - 1)
            if next_delay is None:
                break
            self._step(
                "waiting",
                f"attempt {attempt} of {attempts} failed ({outcome.error}); "
                f"next in {next_delay}: {what}",
            )
            await workflow.sleep(next_delay)
        disabled = await workflow.execute_activity_method(
            OutboxActivities.endpoint_exhausted,
            ExhaustedInput(
                event_id=inp.event_id, endpoint_id=inp.endpoint_id, workflow_id=wf, since=began
            ),
            **DB,
        )
        tail = "; the endpoint is disabled" if disabled.disabled else ""
        self._step("exhausted", f"{what}: every one of {attempts} attempts failed{tail}")
        return DeliveryResult(
            result="exhausted", attempts=attempts, endpoint_disabled_now=disabled.disabled
        )
