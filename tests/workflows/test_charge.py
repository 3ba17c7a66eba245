"""Charge and dunning on the time-skipping server: days of timers in seconds."""

from __future__ import annotations

import asyncio
import uuid
from contextlib import AbstractAsyncContextManager
from typing import Any

import pytest
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.gateway_messages import AttemptChargeInput, Settlement
from workflows.charge import ChargeWorkflow
from workflows.charge_messages import ChargeInput, RetryNow
from workflows.status import SagaStatus

from .standins import Books, lost, outcome, workflow_worker

DAY = 86400.0


def worker(
    env: WorkflowEnvironment, queue: str, books: Books
) -> AbstractAsyncContextManager[Worker]:
    return workflow_worker(env.client, queue, books)


async def start(
    env: WorkflowEnvironment, queue: str, books: Books | None = None, dunning: bool = True
) -> WorkflowHandle[Any, Any]:
    """A charge saga for `books`' own bill and customer (ids unique per test)."""
    bill_id = books.bill_id if books else f"bill_{uuid.uuid4().hex[:8]}"
    customer_id = books.customer_id if books else f"cus_{uuid.uuid4().hex[:8]}"
    return await env.client.start_workflow(
        ChargeWorkflow.run,
        ChargeInput(bill_id=bill_id, customer_id=customer_id, dunning=dunning),
        id=f"charge-{bill_id}-{uuid.uuid4().hex[:4]}",
        task_queue=queue,
    )


async def until_step(handle: WorkflowHandle[Any, Any], step: str) -> SagaStatus:
    for _ in range(200):
        status = await handle.query(ChargeWorkflow.status)
        if status.step == step:
            return status
        await asyncio.sleep(0.05)
    raise AssertionError(f"never reached step {step}")


async def test_dunning_tries_four_times_over_eleven_days_then_uncollectible(time_env, task_queue):
    books = Books(script=lambda req, n: outcome("failed", req), tier="starter")
    async with worker(time_env, task_queue, books):
        handle = await start(time_env, task_queue, books)
        result = await handle.result()
    assert result.outcome == "uncollectible"
    assert result.attempts == 4
    gaps = [b - a for a, b in zip(books.attempt_times, books.attempt_times[1:], strict=False)]
    assert [round(g / DAY) for g in gaps] == [1, 3, 7]
    # Dunning's downgrade is a tier change like any other: it takes the customer's turn.
    assert books.calls[-2:] == ["write_off", "change_tier:free"]
    assert books.turns == [f"upgrade-{books.customer_id}-free-dunning-{books.bill_id}"]
    assert books.tier == "free"


async def test_soft_decline_then_success_on_the_second_try(time_env, task_queue):
    books = Books(script=lambda req, n: outcome("failed" if n == 1 else "succeeded", req))
    async with worker(time_env, task_queue, books):
        result = await (await start(time_env, task_queue, books)).result()
    assert (result.outcome, result.attempts) == ("paid", 2)
    assert "write_off" not in books.calls


async def test_pay_now_in_the_middle_of_dunning(time_env, task_queue):
    paid_now = {"ok": False}

    def script(req: AttemptChargeInput, n: int):
        return outcome("succeeded" if paid_now["ok"] else "failed", req)

    books = Books(script=script)
    async with worker(time_env, task_queue, books):
        handle = await start(time_env, task_queue, books)
        await until_step(handle, "dunning")
        paid_now["ok"] = True  # a new payment method was attached
        await handle.signal(ChargeWorkflow.retry_now, RetryNow(reason="pay now"))
        result = await handle.result()
    assert (result.outcome, result.attempts) == ("paid", 2)
    # Paid at once, not after the one-day timer.
    assert books.attempt_times[1] - books.attempt_times[0] < DAY / 2


async def test_hard_decline_is_not_retried_with_the_same_method(time_env, task_queue):
    seen: list[list[str]] = []

    def script(req: AttemptChargeInput, n: int):
        seen.append(list(req.excluded_payment_methods))
        return outcome("failed", req, decline_kind="hard", decline_code="card_declined")

    books = Books(script=script)
    async with worker(time_env, task_queue, books):
        result = await (await start(time_env, task_queue, books)).result()
    assert result.outcome == "uncollectible"
    assert seen[0] == []
    assert all("pm_1" in s for s in seen[1:])


async def test_bank_transfer_settled_by_signal(time_env, task_queue):
    books = Books(script=lambda req, n: outcome("pending", req, method="bank_transfer"))
    async with worker(time_env, task_queue, books):
        handle = await start(time_env, task_queue, books)
        await until_step(handle, "awaiting_settlement")
        ref = f"ch_{handle.id}-attempt-1"
        await handle.signal(
            ChargeWorkflow.settle,
            Settlement(gateway_reference=ref, status="succeeded", authorization_code="A1B2C3"),
        )
        result = await handle.result()
    assert (result.outcome, result.attempts) == ("paid", 1)
    assert books.calls == ["charge", "record:pending", "record:succeeded"]


def settled(ref: str, status: str = "succeeded") -> Settlement:
    if status == "succeeded":
        return Settlement(gateway_reference=ref, status="succeeded", authorization_code="A1B2C3")
    return Settlement(
        gateway_reference=ref, status="failed", decline_code="account_closed", message="closed"
    )


async def test_a_transfer_past_its_deadline_is_looked_up_until_it_settles(time_env, task_queue):
    # Issue 12: the deadline only starts the look-ups (the webhook may have been lost); the
    # transfer stays open, never a failed attempt, so there is never a second transfer.
    books = Books(script=lambda req, n: outcome("pending", req, method="bank_transfer"))
    books.policy = books.policy.model_copy(update={"dunning_delays": []})
    books.lookups = [None, None, None]  # still pending at the gateway, three times
    async with worker(time_env, task_queue, books):
        handle = await start(time_env, task_queue, books)
        books.late_settlement = settled(f"ch_{handle.id}-attempt-1")
        result = await handle.result()
    assert (result.outcome, result.attempts) == ("paid", 1)
    assert books.calls == [
        "charge", "record:pending",
        "get_charge", "get_charge", "get_charge", "get_charge",
        "record:succeeded",
    ]  # fmt: skip
    assert books.charge_keys == [f"{handle.id}-attempt-1"]
    assert "write_off" not in books.calls


async def test_a_gateway_down_at_the_transfer_deadline_does_not_fail_the_saga(time_env, task_queue):
    # Old code: one get_charge under the gateway's retry policy (6 tries), then the
    # ActivityError failed the whole workflow and left the bill's claim behind.
    books = Books(script=lambda req, n: outcome("pending", req, method="bank_transfer"))
    books.policy = books.policy.model_copy(update={"dunning_delays": []})
    books.lookups = [lost("look-up") for _ in range(8)]
    async with worker(time_env, task_queue, books):
        handle = await start(time_env, task_queue, books)
        books.late_settlement = settled(f"ch_{handle.id}-attempt-1")
        result = await handle.result()
    assert (result.outcome, result.attempts) == ("paid", 1)
    assert books.calls.count("get_charge") == 9  # eight times away, then the answer
    assert books.records == ["record:pending", "record:succeeded"]
    assert books.charge_keys == [f"{handle.id}-attempt-1"]


async def test_a_webhook_during_the_overdue_look_ups_ends_the_wait(time_env, task_queue):
    books = Books(script=lambda req, n: outcome("pending", req, method="bank_transfer"))
    async with worker(time_env, task_queue, books):
        handle = await start(time_env, task_queue, books)
        await until_step(handle, "awaiting_settlement")
        # Past the deadline (3 days, skipped): the gateway says "pending" until the webhook.
        await time_env.sleep(3 * DAY + 60)
        await until_step(handle, "settlement_overdue")
        await handle.signal(ChargeWorkflow.settle, settled(f"ch_{handle.id}-attempt-1"))
        result = await handle.result()
    assert (result.outcome, result.attempts) == ("paid", 1)
    assert books.records == ["record:pending", "record:succeeded"]
    assert books.calls.count("get_charge") >= 1
    assert books.calls.count("charge") == 1


async def test_a_transfer_the_gateway_fails_late_is_one_failed_attempt(time_env, task_queue):
    # Only a definite failure counts in dunning: the next try is the next dunning slot.
    def script(req: AttemptChargeInput, n: int):
        if n == 1:
            return outcome("pending", req, method="bank_transfer")
        return outcome("succeeded", req)

    books = Books(script=script)
    async with worker(time_env, task_queue, books):
        handle = await start(time_env, task_queue, books)
        books.lookups = [None, settled(f"ch_{handle.id}-attempt-1", "failed")]
        result = await handle.result()
    assert (result.outcome, result.attempts) == ("paid", 2)
    assert books.records == ["record:pending", "record:failed", "record:succeeded"]
    assert books.charge_keys == [f"{handle.id}-attempt-1", f"{handle.id}-attempt-2"]


@pytest.mark.parametrize("dunning", [False])
async def test_without_dunning_one_failure_is_final(time_env, task_queue, dunning):
    books = Books(script=lambda req, n: outcome("failed", req))
    async with worker(time_env, task_queue, books):
        result = await (await start(time_env, task_queue, books, dunning=dunning)).result()
    assert (result.outcome, result.attempts) == ("failed", 1)
    assert "write_off" not in books.calls
