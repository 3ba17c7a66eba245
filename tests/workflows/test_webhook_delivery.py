"""WebhookDeliveryWorkflow on the time-skipping server: three days of retries in a second.

The attempt and the exhausted step are stand-ins under the real activity names, so the
schedule itself is what is tested: attempt, durable timer, attempt, ... then disable.
"""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pytest
from temporalio import activity
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from billing.outbound import (
    AttemptInput,
    AttemptOutcome,
    AttemptResult,
    DeliveryInput,
    EndpointDisabled,
    ExhaustedInput,
    attempt_queue,
)
from config.settings import Settings
from workflows.search_attributes import WEBHOOK_ENDPOINT_ID
from workflows.webhook_delivery import WebhookDeliveryWorkflow

SCHEDULE = Settings().webhook_delays  # the default: about three days


@dataclass
class Receiver:
    """Answers attempt n with `answers[n-1]`, the last answer after that."""

    answers: list[AttemptResult]
    attempts: list[AttemptInput] = field(default_factory=list)
    times: list[datetime] = field(default_factory=list)
    exhausted: list[ExhaustedInput] = field(default_factory=list)

    def activities(self) -> tuple[object, object]:
        @activity.defn(name="attempt_delivery")
        async def attempt_delivery(req: AttemptInput) -> AttemptOutcome:
            self.attempts.append(req)
            self.times.append(activity.info().current_attempt_scheduled_time)
            result = self.answers[min(len(self.attempts), len(self.answers)) - 1]
            code = {"delivered": 200, "failed": 503}.get(result)
            return AttemptOutcome(result=result, status_code=code)

        @activity.defn(name="endpoint_exhausted")
        async def endpoint_exhausted(req: ExhaustedInput) -> EndpointDisabled:
            self.exhausted.append(req)
            return EndpointDisabled(disabled=True, event_id="evt_disabled")

        return attempt_delivery, endpoint_exhausted


async def _deliver(env: WorkflowEnvironment, queue: str, receiver: Receiver):
    # The session's server has the saga attributes (conftest); this one once, here.
    with contextlib.suppress(RPCError):
        await env.client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(
                namespace=env.client.namespace,
                search_attributes={
                    WEBHOOK_ENDPOINT_ID.name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD
                },
            )
        )
    attempt, exhausted = receiver.activities()
    inp = DeliveryInput(
        event_id=f"evt_{uuid.uuid4().hex[:8]}",
        endpoint_id="we_1",
        event_type="bill.paid",
        customer_id="cus_1",
        schedule=SCHEDULE,
        attempt_queue=attempt_queue(queue),
    )
    async with (
        Worker(
            env.client,
            task_queue=queue,
            workflows=[WebhookDeliveryWorkflow],
            activities=[exhausted],
        ),
        Worker(env.client, task_queue=attempt_queue(queue), activities=[attempt]),
    ):
        return await env.client.execute_workflow(
            WebhookDeliveryWorkflow.run,
            inp,
            id=f"webhook-{inp.event_id}-we_1",
            task_queue=queue,
        )


async def test_a_dead_endpoint_is_tried_for_three_days_then_disabled(
    time_env: WorkflowEnvironment, task_queue: str
) -> None:
    receiver = Receiver(answers=["failed"])
    result = await _deliver(time_env, task_queue, receiver)
    assert result.result == "exhausted"
    assert result.endpoint_disabled_now
    assert len(receiver.attempts) == len(SCHEDULE) + 1 == result.attempts
    assert [a.attempt for a in receiver.attempts] == list(range(1, len(SCHEDULE) + 2))
    assert [a.next_delay for a in receiver.attempts] == [*SCHEDULE, None]
    waited = [b - a for a, b in zip(receiver.times, receiver.times[1:], strict=False)]
    for actual, planned in zip(waited, SCHEDULE, strict=True):
        assert planned <= actual < planned + timedelta(seconds=5)
    assert receiver.times[-1] - receiver.times[0] >= timedelta(days=3)
    (exhausted,) = receiver.exhausted
    assert exhausted.endpoint_id == "we_1"


@pytest.mark.parametrize("failures", [0, 1, 5])
async def test_delivered_on_the_first_2xx(
    time_env: WorkflowEnvironment, task_queue: str, failures: int
) -> None:
    receiver = Receiver(answers=[*(["failed"] * failures), "delivered"])
    result = await _deliver(time_env, task_queue, receiver)
    assert (result.result, result.attempts) == ("delivered", failures + 1)
    assert receiver.exhausted == []


async def test_a_disabled_endpoint_ends_the_delivery(
    time_env: WorkflowEnvironment, task_queue: str
) -> None:
    receiver = Receiver(answers=["failed", "failed", "endpoint_disabled"])
    result = await _deliver(time_env, task_queue, receiver)
    assert (result.result, result.attempts) == ("endpoint_disabled", 2)
    assert receiver.exhausted == []
