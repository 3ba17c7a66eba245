"""Charge and dunning on the time-skipping server: days of timers in seconds."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from billing.messages import AttemptChargeInput, ChargeInput, RetryNow, Settlement
from worker import WORKFLOWS
from workflows.charge import ChargeWorkflow

from .standins import Books, outcome

DAY = 86400.0


def worker(env: WorkflowEnvironment, queue: str, books: Books) -> Worker:
    return Worker(env.client, task_queue=queue, workflows=WORKFLOWS, activities=books.activities())


async def start(env: WorkflowEnvironment, queue: str, dunning: bool = True) -> WorkflowHandle:
    return await env.client.start_workflow(
        ChargeWorkflow.run,
        ChargeInput(bill_id="bill_1", customer_id="cus_1", dunning=dunning),
        id=f"charge-bill-{uuid.uuid4().hex[:8]}",
        task_queue=queue,
    )


async def until_step(handle: WorkflowHandle, step: str) -> None:
    for _ in range(200):
        status = await handle.query(ChargeWorkflow.status)
        if status.step == step:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"never reached step {step}")


async def test_dunning_tries_four_times_over_eleven_days_then_uncollectible(time_env, task_queue):
    books = Books(script=lambda req, n: outcome("failed", req))
    async with worker(time_env, task_queue, books):
        handle = await start(time_env, task_queue)
        result = await handle.result()
    assert result.outcome == "uncollectible"
    assert result.attempts == 4
    gaps = [b - a for a, b in zip(books.attempt_times, books.attempt_times[1:], strict=False)]
    assert [round(g / DAY) for g in gaps] == [1, 3, 7]
    assert books.calls[-2:] == ["write_off", "dunning_exhausted:downgrade"]
    assert books.tier == "free"


async def test_soft_decline_then_success_on_the_second_try(time_env, task_queue):
    books = Books(script=lambda req, n: outcome("failed" if n == 1 else "succeeded", req))
    async with worker(time_env, task_queue, books):
        result = await (await start(time_env, task_queue)).result()
    assert (result.outcome, result.attempts) == ("paid", 2)
    assert "write_off" not in books.calls


async def test_pay_now_in_the_middle_of_dunning(time_env, task_queue):
    paid_now = {"ok": False}

    def script(req: AttemptChargeInput, n: int):
        return outcome("succeeded" if paid_now["ok"] else "failed", req)

    books = Books(script=script)
    async with worker(time_env, task_queue, books):
        handle = await start(time_env, task_queue)
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
        result = await (await start(time_env, task_queue)).result()
    assert result.outcome == "uncollectible"
    assert seen[0] == []
    assert all("pm_1" in s for s in seen[1:])


async def test_bank_transfer_settled_by_signal(time_env, task_queue):
    books = Books(script=lambda req, n: outcome("pending", req, method="bank_transfer"))
    async with worker(time_env, task_queue, books):
        handle = await start(time_env, task_queue)
        await until_step(handle, "awaiting_settlement")
        ref = f"ch_{handle.id}-attempt-1"
        await handle.signal(
            ChargeWorkflow.settle,
            Settlement(gateway_reference=ref, status="succeeded", authorization_code="A1B2C3"),
        )
        result = await handle.result()
    assert (result.outcome, result.attempts) == ("paid", 1)
    assert books.calls == ["charge", "record:pending", "record:succeeded"]


async def test_bank_transfer_past_its_deadline_fails_the_attempt(time_env, task_queue):
    books = Books(script=lambda req, n: outcome("pending", req, method="bank_transfer"))
    books.policy = books.policy.model_copy(update={"dunning_delays": []})
    async with worker(time_env, task_queue, books):
        result = await (await start(time_env, task_queue)).result()
    assert result.outcome == "uncollectible"
    # The gateway was asked once more before giving up on the transfer.
    assert books.calls[:4] == ["charge", "record:pending", "get_charge", "record:failed"]


@pytest.mark.parametrize("dunning", [False])
async def test_without_dunning_one_failure_is_final(time_env, task_queue, dunning):
    books = Books(script=lambda req, n: outcome("failed", req))
    async with worker(time_env, task_queue, books):
        result = await (await start(time_env, task_queue, dunning=dunning)).result()
    assert (result.outcome, result.attempts) == ("failed", 1)
    assert "write_off" not in books.calls
