"""Unknown is not failed (issue 12), on the time-skipping server with stand-in activities.

A charge or refund whose answer is lost keeps its claim (or reservation) and is looked up
by its key; only the gateway's answer is recorded. Another attempt's claim (`in_flight`)
is resolved before anything else happens to the bill. No usable payment method is no
attempt: the saga waits for one. A pay-now request is one try, however often it arrives.

Each test says how the code before issue 12 (9cf078d) failed it.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import pytest
from temporalio.client import WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from activities.gateway_messages import AttemptChargeInput, GatewayRefundInput, GatewayRefundOutcome
from workflows.charge import ChargeWorkflow
from workflows.charge_messages import RetryNow
from workflows.refund import RefundWorkflow
from workflows.refund_messages import RefundInput

from .standins import Books, found, lost, outcome, workflow_worker
from .test_charge import DAY, start, until_step


def always_lost(req: AttemptChargeInput, n: int):
    raise lost()


def charge_keys_in_order(books: Books) -> list[str]:
    """Each key the charge stand-in saw, once, in the order first seen."""
    return list(dict.fromkeys(books.charge_keys))


def first_charge_call(books: Books, key: str) -> int:
    """Where in `books.calls` the first charge under `key` is."""
    nth = books.charge_keys.index(key)
    return [i for i, call in enumerate(books.calls) if call == "charge"][nth]


# --- Lost answers on a charge ---------------------------------------------------------


async def test_a_lost_charge_answer_is_looked_up_and_the_bill_paid(time_env, task_queue):
    # Old code: the ActivityError became a failed attempt (method "unknown"), the bill was
    # freed and the next dunning try charged a second key: two captures at the gateway.
    books = Books(script=always_lost)
    books.resolve = lambda req, n: found("succeeded", req.idempotency_key)
    async with workflow_worker(time_env.client, task_queue, books):
        handle = await start(time_env, task_queue, books)
        result = await handle.result()
    key = f"{handle.id}-attempt-1"
    assert (result.outcome, result.attempts) == ("paid", 1)
    # Retried under its one key for the retry budget, then looked up: never a new key.
    assert set(books.charge_keys) == {key}
    assert len(books.charge_keys) > 1
    assert books.calls.index(f"resolve:{key}") > books.calls.index("charge")
    assert books.calls[books.calls.index(f"resolve:{key}") :] == [
        f"resolve:{key}",
        "record:succeeded",
    ]
    assert books.records == ["record:succeeded"]
    assert "write_off" not in books.calls


async def test_nothing_under_a_lost_key_is_one_failed_attempt_in_dunning(time_env, task_queue):
    # The gateway holds no charge under the key: a definite "nothing taken", so dunning
    # goes on with its next slot (a day later) under a new key.
    def script(req: AttemptChargeInput, n: int):
        if req.idempotency_key.endswith("-attempt-1"):
            raise lost()
        return outcome("succeeded", req)

    books = Books(script=script)  # resolve: nothing under the key (the default)
    async with workflow_worker(time_env.client, task_queue, books):
        handle = await start(time_env, task_queue, books)
        result = await handle.result()
    first, second = f"{handle.id}-attempt-1", f"{handle.id}-attempt-2"
    assert (result.outcome, result.attempts) == ("paid", 2)
    assert charge_keys_in_order(books) == [first, second]
    assert books.records == ["record:failed", "record:succeeded"]
    # Looked up and recorded before anything else was tried on the bill.
    resolved = books.calls.index(f"resolve:{first}")
    assert resolved < books.calls.index("record:failed") < first_charge_call(books, second)
    # The second key was first tried at the next dunning slot, not at once.
    first_try = books.attempt_times[books.charge_keys.index(first)]
    second_try = books.attempt_times[books.charge_keys.index(second)]
    assert round((second_try - first_try) / DAY) == 1


async def test_a_look_up_that_finds_a_decline_counts_that_decline(time_env, task_queue):
    def script(req: AttemptChargeInput, n: int):
        if req.idempotency_key.endswith("-attempt-1"):
            raise lost()
        return outcome("succeeded", req)

    books = Books(script=script)
    books.resolve = lambda req, n: found("failed", req.idempotency_key)
    async with workflow_worker(time_env.client, task_queue, books):
        result = await (await start(time_env, task_queue, books)).result()
    assert (result.outcome, result.attempts) == ("paid", 2)
    assert books.records == ["record:failed", "record:succeeded"]


# --- Another attempt's claim -----------------------------------------------------------


@pytest.mark.parametrize("earlier", ["succeeded", "failed"])
async def test_an_in_flight_attempt_is_resolved_before_a_new_one(time_env, task_queue, earlier):
    # The bill's claim belongs to an attempt whose outcome nobody knows (a saga that was
    # terminated, a pay-now that lost its answer): its key is looked up first.
    other = "charge-bill_x-pay-r1-attempt-1"

    def script(req: AttemptChargeInput, n: int):
        if n == 1:
            return outcome("in_flight", req, idempotency_key=other, gateway_reference=None)
        return outcome("succeeded", req)

    books = Books(script=script)
    books.resolve = lambda req, n: found(earlier, req.idempotency_key)
    async with workflow_worker(time_env.client, task_queue, books):
        handle = await start(time_env, task_queue, books)
        result = await handle.result()
    resolved = books.calls.index(f"resolve:{other}")
    assert books.calls[:resolved] == ["charge"]
    if earlier == "succeeded":
        # The other attempt paid the bill: nothing is charged again.
        assert (result.outcome, result.attempts) == ("paid", 0)
        assert books.calls.count("charge") == 1
        assert books.records == ["record:succeeded"]
    else:
        # Its definite failure frees the bill: this saga's own try follows at once.
        assert (result.outcome, result.attempts) == ("paid", 1)
        assert books.charge_keys == [f"{handle.id}-attempt-1", f"{handle.id}-attempt-1"]
        assert books.records == ["record:failed", "record:succeeded"]
        assert books.calls.index("record:failed") < books.calls.index("charge", resolved)
        assert books.attempt_times[1] - books.attempt_times[0] < DAY / 2


# --- No usable method: no attempt -------------------------------------------------------


def no_method_until(flag: dict[str, bool]):
    def script(req: AttemptChargeInput, n: int):
        if not flag["attached"]:
            return outcome(
                "no_method",
                req,
                payment_method_id=None,
                method="",
                gateway_reference=None,
                message="no usable payment method on file",
            )
        return outcome("succeeded", req)

    return script


async def test_no_usable_method_waits_without_an_attempt_then_retry_now_charges(
    time_env, task_queue
):
    # Old code: each dunning slot recorded a failed "attempt" with method "none" that never
    # reached the gateway, and the saga never said it was waiting for a method.
    flag = {"attached": False}
    books = Books(script=no_method_until(flag))
    async with workflow_worker(time_env.client, task_queue, books):
        handle = await start(time_env, task_queue, books)
        status = await until_step(handle, "awaiting_payment_method")
        assert status.bill_id == books.bill_id
        assert books.records == []
        flag["attached"] = True  # a new card on file
        await handle.signal(ChargeWorkflow.retry_now, RetryNow(reason="new payment method"))
        result = await handle.result()
    assert (result.outcome, result.attempts) == ("paid", 1)
    assert books.records == ["record:succeeded"]
    # Paid when asked, not at the next dunning slot.
    assert books.attempt_times[-1] - books.attempt_times[0] < DAY / 2


async def test_no_usable_method_all_through_dunning_records_nothing(time_env, task_queue):
    books = Books(script=no_method_until({"attached": False}), tier="starter")
    async with workflow_worker(time_env.client, task_queue, books):
        result = await (await start(time_env, task_queue, books)).result()
    assert (result.outcome, result.attempts) == ("uncollectible", 0)
    assert books.records == []
    assert books.calls.count("charge") == 4  # asked at every slot; none reached a gateway
    assert "write_off" in books.calls


# --- Pay-now requests --------------------------------------------------------------------


async def until_charges(books: Books, count: int, handle: WorkflowHandle[Any, Any]) -> None:
    for _ in range(200):
        if books.calls.count("charge") >= count:
            status = await handle.query(ChargeWorkflow.status)
            if status.step == "dunning":
                return
        await asyncio.sleep(0.05)
    raise AssertionError(f"never saw {count} charges; calls: {books.calls}")


async def test_the_same_pay_now_request_twice_is_one_extra_try(time_env, task_queue):
    books = Books(script=lambda req, n: outcome("failed", req), tier="starter")
    async with workflow_worker(time_env.client, task_queue, books):
        handle = await start(time_env, task_queue, books)
        await until_step(handle, "dunning")
        await handle.signal(ChargeWorkflow.retry_now, RetryNow(request_id="pay-1"))
        await until_charges(books, 2, handle)
        await handle.signal(ChargeWorkflow.retry_now, RetryNow(request_id="pay-1"))
        result = await handle.result()
    # Four dunning slots and one pay-now; the repeated request started nothing.
    assert (result.outcome, result.attempts) == ("uncollectible", 5)
    assert len(set(books.charge_keys)) == 5


# --- Lost answers on a refund -----------------------------------------------------------


def refund_lost(req: GatewayRefundInput, n: int) -> GatewayRefundOutcome:
    raise lost("refund")


async def start_refund(
    env: WorkflowEnvironment, queue: str, books: Books
) -> WorkflowHandle[Any, Any]:
    return await env.client.start_workflow(
        RefundWorkflow.run,
        RefundInput(bill_id=books.bill_id, amount=Decimal("6.00"), reason="x", request_id="r1"),
        id=f"refund-{books.bill_id}-r1",
        task_queue=queue,
    )


async def test_a_lost_refund_answer_is_looked_up_and_completed(time_env, task_queue):
    # Old code: the ActivityError released the reservation; the gateway had refunded, the
    # ledger had not (gateway 10.00 refunded, ledger 6.00).
    books = Books(script=lambda req, n: outcome("succeeded", req))
    books.refund_script = refund_lost
    books.refund_found = GatewayRefundOutcome(status="succeeded", gateway_reference="re_9")
    async with workflow_worker(time_env.client, task_queue, books):
        handle = await start_refund(time_env, task_queue, books)
        result = await handle.result()
    assert (result.outcome, result.amount) == ("refunded", Decimal("6.00"))
    assert books.calls.count("gateway_refund") > 1  # retried under its key first
    tail = [c for c in books.calls if c != "gateway_refund"]
    assert tail == ["reserve_refund", f"resolve_refund:{handle.id}-refund", "complete_refund"]


async def test_no_refund_under_a_lost_key_releases_the_reservation(time_env, task_queue):
    books = Books(script=lambda req, n: outcome("succeeded", req))
    books.refund_script = refund_lost  # the default look-up: not_found
    async with workflow_worker(time_env.client, task_queue, books):
        handle = await start_refund(time_env, task_queue, books)
        with pytest.raises(WorkflowFailureError):
            await handle.result()
        status = await handle.query(RefundWorkflow.status)
    tail = [c for c in books.calls if c != "gateway_refund"]
    assert tail == ["reserve_refund", f"resolve_refund:{handle.id}-refund", "release_refund"]
    assert status.step == "failed"


async def test_a_refund_the_gateway_refuses_is_released_without_a_look_up(time_env, task_queue):
    def refused(req: GatewayRefundInput, n: int) -> GatewayRefundOutcome:
        raise ApplicationError("over the charge", type="GatewayRefused", non_retryable=True)

    books = Books(script=lambda req, n: outcome("succeeded", req))
    books.refund_script = refused
    async with workflow_worker(time_env.client, task_queue, books):
        handle = await start_refund(time_env, task_queue, books)
        with pytest.raises(WorkflowFailureError):
            await handle.result()
    assert books.calls == ["reserve_refund", "gateway_refund", "release_refund"]
