"""The one activity that talks to Temporal itself: ask for a customer's tier-change turn."""

from __future__ import annotations

from temporalio import activity
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from activities.subscriptions_messages import SubscriptionInput, TurnRequest
from billing.workflow_ids import subscription_id


class SubscriptionActivities:
    def __init__(self, client: Client, task_queue: str) -> None:
        self.client = client
        self.task_queue = task_queue

    @activity.defn
    async def request_turn(self, req: TurnRequest) -> None:
        """Signal-with-start: queues the change on the running subscription, or opens one.

        A workflow cannot signal-with-start, hence an activity; retried, it asks again,
        and the subscription keeps the first place of a workflow that asks twice.
        """
        await self.client.start_workflow(
            "SubscriptionWorkflow",
            SubscriptionInput(customer_id=req.customer_id),
            id=subscription_id(req.customer_id),
            task_queue=self.task_queue,
            start_signal="request_turn",
            start_signal_args=[req],
            static_summary=f"Tier changes of {req.customer_id}, one at a time",
        )

    @activity.defn
    async def is_running(self, req: TurnRequest) -> bool:
        """Whether the tier change holding the turn still runs (it may have been terminated)."""
        try:
            desc = await self.client.get_workflow_handle(req.workflow_id).describe()
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return False
            raise
        return desc.status == WorkflowExecutionStatus.RUNNING
