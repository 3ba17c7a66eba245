"""WebhookDispatchWorkflow: turns committed outbox events into deliveries, for ever.

One per task queue, started (or found running) by every worker at start. Each round is
one heartbeating activity that polls the outbox for a minute; a worker killed mid-round
is noticed by the heartbeat timeout and the round runs again elsewhere, so an event that
committed is always dispatched. Rounds continue as new hourly to keep the history short.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.client import Client
from temporalio.common import RetryPolicy, WorkflowIDConflictPolicy, WorkflowIDReusePolicy

with workflow.unsafe.imports_passed_through():
    from activities.outbox import OutboxActivities
    from billing.outbound import DispatchInput, DispatchRound, dispatcher_id
    from workflows.status import SagaWorkflow

ROUND = DispatchRound()
ROUNDS_PER_RUN = 60
_ROUND_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
)


@workflow.defn
class WebhookDispatchWorkflow(SagaWorkflow):
    @workflow.run
    async def run(self, inp: DispatchInput) -> None:
        dispatched = inp.dispatched
        for _ in range(ROUNDS_PER_RUN):
            details = f"{dispatched} events dispatched; polling the outbox"
            self._step("dispatching", details)
            done = await workflow.execute_activity_method(
                OutboxActivities.dispatch_events,
                ROUND,
                start_to_close_timeout=ROUND.duration + timedelta(seconds=60),
                heartbeat_timeout=timedelta(seconds=10),
                retry_policy=_ROUND_RETRY,
            )
            dispatched += done.events
            if workflow.info().is_continue_as_new_suggested():
                break
        workflow.continue_as_new(DispatchInput(dispatched=dispatched))


async def ensure_dispatcher(client: Client, task_queue: str) -> str:
    """Start the dispatcher of this task queue unless it runs; its workflow id."""
    workflow_id = dispatcher_id(task_queue)
    await client.start_workflow(
        WebhookDispatchWorkflow.run,
        DispatchInput(),
        id=workflow_id,
        task_queue=task_queue,
        # A running dispatcher is kept; one that was terminated is started anew.
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        static_summary="Outbound webhooks: start a delivery for every new outbox event",
    )
    return workflow_id
