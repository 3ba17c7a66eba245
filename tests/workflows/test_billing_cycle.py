"""One workflow execution per bill paid at once (issue 15), on stand-in activities.

The cycle makes the bill's first attempt itself, as attempt 1 of `charge-{bill}`, charged
and recorded in one activity. It starts the ChargeWorkflow only when collecting must wait,
and hands it what happened, so that the saga goes on exactly where the cycle stopped: no
second gateway call for the same attempt, no attempt counted twice, the same dunning.

Each test says how the code before issue 15 (two executions, five activities) differs.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from activities.gateway_messages import AttemptChargeInput, Settlement
from workflows.billing_cycle import BillingCycleWorkflow
from workflows.billing_cycle_messages import BillingCycleInput, BillingCycleResult
from workflows.charge import ChargeWorkflow
from workflows.charge_messages import ChargeResult

from .standins import Books, found, lost, outcome, workflow_worker
from .test_charge import DAY, until_step

LOCAL_ACTIVITY_MARKER = "core_local_activity"


@dataclass
class Shape:
    """What a workflow and its children scheduled, read from their histories."""

    executions: int = 0
    activities: dict[str, list[str]] = field(default_factory=dict)
    local_activities: int = 0


async def shape_of(client: Client, workflow_id: str, shape: Shape | None = None) -> Shape:
    shape = shape or Shape()
    shape.executions += 1
    names = shape.activities.setdefault(workflow_id, [])
    async for event in client.get_workflow_handle(workflow_id).fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            names.append(event.activity_task_scheduled_event_attributes.activity_type.name)
        elif event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED:
            marker = event.marker_recorded_event_attributes.marker_name
            shape.local_activities += marker == LOCAL_ACTIVITY_MARKER
        elif event.event_type == EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_STARTED:
            child = event.child_workflow_execution_started_event_attributes.workflow_execution
            await shape_of(client, child.workflow_id, shape)
    return shape


def bill_of(books: Books) -> str:
    """The bill the `open_cycle` stand-in issues for the books' customer."""
    return f"bill_{books.customer_id}_{books.suffix}"


def key(books: Books, n: int) -> str:
    return f"charge-{bill_of(books)}-attempt-{n}"


async def start_cycle(
    env: WorkflowEnvironment, queue: str, books: Books
) -> WorkflowHandle[Any, BillingCycleResult]:
    return await env.client.start_workflow(
        BillingCycleWorkflow.run,
        BillingCycleInput(customer_id=books.customer_id, period="2026-10"),
        id=f"bill-{books.customer_id}-2026-10",
        task_queue=queue,
    )


async def charge_saga(env: WorkflowEnvironment, books: Books) -> WorkflowHandle[Any, ChargeResult]:
    """The bill's ChargeWorkflow, once the cycle has started it."""
    handle = env.client.get_workflow_handle_for(ChargeWorkflow.run, f"charge-{bill_of(books)}")
    for _ in range(200):
        try:
            await handle.describe()
            return handle
        except RPCError:
            await asyncio.sleep(0.05)
    raise AssertionError(f"{handle.id} never started")


async def test_a_bill_paid_at_once_is_one_execution_of_two_activities(time_env, task_queue):
    # Before: the cycle and its ChargeWorkflow, and five activities (issue_cycle_bill,
    # get_bill, charge_policy, charge, record_attempt).
    books = Books(script=lambda req, n: outcome("succeeded", req))
    async with workflow_worker(time_env.client, task_queue, books):
        handle = await start_cycle(time_env, task_queue, books)
        result: BillingCycleResult = await handle.result()
        shape = await shape_of(time_env.client, handle.id)
        status = await handle.query(BillingCycleWorkflow.status)
    assert (result.bill_id, result.outcome) == (bill_of(books), "paid")
    assert shape.executions == 1
    assert shape.activities == {handle.id: ["open_cycle", "charge_and_record"]}
    assert shape.local_activities == 0
    # Under attempt 1 of the bill's charge saga; recorded before the cycle ended.
    assert books.charge_keys == [key(books, 1)]
    assert books.records == ["record:succeeded"]
    assert (status.step, status.bill_id) == ("paid", bill_of(books))


async def test_a_first_decline_hands_the_bill_to_dunning_from_the_next_slot(time_env, task_queue):
    books = Books(script=lambda req, n: outcome("failed" if n == 1 else "succeeded", req))
    async with workflow_worker(time_env.client, task_queue, books):
        handle = await start_cycle(time_env, task_queue, books)
        result: BillingCycleResult = await handle.result()
        charged = await (await charge_saga(time_env, books)).result()
        shape = await shape_of(time_env.client, handle.id)
    assert result.outcome == "paid"
    # The cycle's attempt counts once, in the saga's figures too; one gateway call each.
    assert (charged.outcome, charged.attempts) == ("paid", 2)
    assert books.charge_keys == [key(books, 1), key(books, 2)]
    assert books.records == ["record:failed", "record:succeeded"]
    assert round((books.attempt_times[1] - books.attempt_times[0]) / DAY) == 1
    # The saga reads neither the bill nor the policy again: the cycle handed them over.
    assert shape.executions == 2
    assert shape.activities[f"charge-{bill_of(books)}"] == ["charge", "record_attempt"]


async def test_declined_throughout_is_the_same_dunning_then_uncollectible(time_env, task_queue):
    books = Books(script=lambda req, n: outcome("failed", req), tier="starter")
    async with workflow_worker(time_env.client, task_queue, books):
        handle = await start_cycle(time_env, task_queue, books)
        result: BillingCycleResult = await handle.result()
        charged = await (await charge_saga(time_env, books)).result()
    assert result.outcome == "uncollectible"
    assert (charged.outcome, charged.attempts) == ("uncollectible", 4)
    gaps = [b - a for a, b in zip(books.attempt_times, books.attempt_times[1:], strict=False)]
    assert [round(g / DAY) for g in gaps] == [1, 3, 7]
    assert books.charge_keys == [key(books, n) for n in range(1, 5)]
    assert books.calls[-2:] == ["write_off", "change_tier:free"]


async def test_a_first_attempt_whose_answer_is_lost_is_resolved_by_the_saga_first(
    time_env, task_queue
):
    def script(req: AttemptChargeInput, n: int):
        if req.idempotency_key.endswith("-attempt-1"):
            raise lost()
        return outcome("succeeded", req)

    books = Books(script=script)
    books.resolve = lambda req, n: found("succeeded", req.idempotency_key)
    async with workflow_worker(time_env.client, task_queue, books):
        handle = await start_cycle(time_env, task_queue, books)
        result: BillingCycleResult = await handle.result()
        saga = await charge_saga(time_env, books)
        charged = await saga.result()
        shape = await shape_of(time_env.client, handle.id)
    assert result.outcome == "paid"
    assert (charged.outcome, charged.attempts) == ("paid", 1)
    # Retried under its one key for the retry budget, then looked up; never a new key.
    assert set(books.charge_keys) == {key(books, 1)}
    assert len(books.charge_keys) > 1
    resolved = books.calls.index(f"resolve:{key(books, 1)}")
    assert books.calls[resolved:] == [f"resolve:{key(books, 1)}", "record:succeeded"]
    # The look-up is the first thing the saga does: it resolves before anything else.
    assert shape.activities[saga.id] == ["resolve_charge", "record_attempt"]


async def test_a_pending_transfer_is_handed_over_and_settled_by_the_webhook(time_env, task_queue):
    # The customer's newest method was a card when the cycle opened; the attempt found a
    # transfer (a method attached meanwhile): recorded pending, the saga waits for it.
    books = Books(script=lambda req, n: outcome("pending", req, method="bank_transfer"))
    async with workflow_worker(time_env.client, task_queue, books):
        handle = await start_cycle(time_env, task_queue, books)
        saga = await charge_saga(time_env, books)
        await until_step(saga, "awaiting_settlement")
        assert books.records == ["record:pending"]
        await saga.signal(
            ChargeWorkflow.settle,
            Settlement(
                gateway_reference=f"ch_{key(books, 1)}",
                status="succeeded",
                authorization_code="A1B2C3",
            ),
        )
        result: BillingCycleResult = await handle.result()
        charged = await saga.result()
    assert result.outcome == "paid"
    assert (charged.outcome, charged.attempts) == ("paid", 1)
    assert books.calls.count("charge") == 1
    assert books.records == ["record:pending", "record:succeeded"]


async def test_a_bank_transfer_on_file_goes_to_the_saga_before_any_attempt(time_env, task_queue):
    # A transfer always waits: the saga the webhook signals makes it, as attempt 1.
    books = Books(script=lambda req, n: outcome("pending", req, method="bank_transfer"))
    books.method_type = "bank_transfer"
    async with workflow_worker(time_env.client, task_queue, books):
        handle = await start_cycle(time_env, task_queue, books)
        saga = await charge_saga(time_env, books)
        await until_step(saga, "awaiting_settlement")
        ref = f"ch_{key(books, 1)}"
        await saga.signal(
            ChargeWorkflow.settle,
            Settlement(gateway_reference=ref, status="succeeded", authorization_code="A1B2C3"),
        )
        result: BillingCycleResult = await handle.result()
        shape = await shape_of(time_env.client, handle.id)
    assert result.outcome == "paid"
    assert shape.activities == {
        handle.id: ["open_cycle"],
        saga.id: ["charge", "record_attempt", "record_attempt"],
    }
    assert books.charge_keys == [key(books, 1)]


async def test_no_usable_method_is_handed_over_without_an_attempt(time_env, task_queue):
    books = Books(
        script=lambda req, n: outcome(
            "no_method", req, payment_method_id=None, method="", gateway_reference=None
        ),
        tier="starter",
    )
    books.method_type = None
    async with workflow_worker(time_env.client, task_queue, books):
        handle = await start_cycle(time_env, task_queue, books)
        saga = await charge_saga(time_env, books)
        status = await until_step(saga, "awaiting_payment_method")
        assert status.bill_id == bill_of(books)
        result: BillingCycleResult = await handle.result()
        charged = await saga.result()
    assert result.outcome == "uncollectible"
    assert (charged.outcome, charged.attempts) == ("uncollectible", 0)
    assert books.records == []
    assert books.calls.count("charge") == 4  # asked at every slot; none reached a gateway


async def test_another_attempts_claim_is_resolved_by_the_saga_before_its_own_try(
    time_env, task_queue
):
    # The bill's claim belongs to an attempt nobody knows the outcome of (a pay-now whose
    # answer was lost): the saga looks that key up first, then tries at once.
    other = "charge-bill_x-pay-r1-attempt-1"

    def script(req: AttemptChargeInput, n: int):
        if n == 1:
            return outcome("in_flight", req, idempotency_key=other, gateway_reference=None)
        return outcome("succeeded", req)

    books = Books(script=script)  # resolve: nothing under the other key, a definite no
    async with workflow_worker(time_env.client, task_queue, books):
        handle = await start_cycle(time_env, task_queue, books)
        result: BillingCycleResult = await handle.result()
        charged = await (await charge_saga(time_env, books)).result()
    assert result.outcome == "paid"
    assert (charged.outcome, charged.attempts) == ("paid", 1)
    resolved = books.calls.index(f"resolve:{other}")
    assert books.calls[resolved:] == [f"resolve:{other}", "record:failed", "charge",
                                      "record:succeeded"]  # fmt: skip
    # The cycle's try made no gateway call under its key: the saga's try is attempt 1.
    assert books.charge_keys == [key(books, 1), key(books, 1)]
    assert books.attempt_times[1] - books.attempt_times[0] < DAY / 2
