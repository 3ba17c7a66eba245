"""The API's one way to Temporal: start, signal and query sagas through typed handles
(`ChargeWorkflow.retry_now`, not "retry_now"), so a rename is a type error, not a runtime
miss; Temporal's errors become domain errors."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode
from temporalio.types import MethodAsyncSingleParam, ParamType, ReturnType, SelfType

from activities.gateway_messages import Settlement
from api.deps import AppState
from billing.catalog import AUTO_UPGRADE_TIER, Tier
from billing.errors import Conflict, DependencyUnavailable, NotFound
from billing.workflow_ids import auto_upgrade_id, charge_id
from config.settings import Settings
from store import bills as bills_sql
from workflows.charge import ChargeWorkflow
from workflows.charge_messages import RetryNow
from workflows.search_attributes import search_attributes
from workflows.upgrade import UpgradeWorkflow
from workflows.upgrade_messages import UpgradeInput


@contextmanager
def translated(what: str) -> Iterator[None]:
    """Temporal away is a 503, an unknown workflow a 404: never a 500."""
    try:
        yield
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise NotFound(f"{what} not found") from exc
        raise DependencyUnavailable(f"Temporal did not answer ({exc.status.name})") from exc


def request_id(idempotency_key: str | None) -> str:
    """The request's own id: its Idempotency-Key, else a fresh one (a new operation)."""
    return idempotency_key or uuid.uuid4().hex[:16]


# --- Starts ------------------------------------------------------------------------


async def start(
    client: Client,
    settings: Settings,
    run: MethodAsyncSingleParam[SelfType, ParamType, ReturnType],
    arg: ParamType,
    *,
    workflow_id: str,
    summary: str,
    reuse: WorkflowIDReusePolicy = WorkflowIDReusePolicy.REJECT_DUPLICATE,
    already: str | None,
    **attributes: str | None,
) -> str:
    """Start `run` (e.g. `RefundWorkflow.run`) once. A second start with the same id is a
    409 that says `already`; with `already` None the id carries the request's own id, so a
    second start is the same request again and answers the first one's id, starting nothing."""
    with translated(workflow_id):
        try:
            await client.start_workflow(
                run,
                arg,
                id=workflow_id,
                task_queue=settings.task_queue,
                id_reuse_policy=reuse,
                id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
                search_attributes=search_attributes(**attributes),
                static_summary=summary,
            )
        except WorkflowAlreadyStartedError as exc:
            if already is None:
                return workflow_id
            raise Conflict(f"{already} (workflow {workflow_id})") from exc
    return workflow_id


async def start_auto_conversion(client: Client, settings: Settings, customer_id: str) -> bool:
    """Start (or join) the free-to-starter upgrade of this free stint; False if refused.

    However many requests cross the free limit together, one saga runs: they share the
    workflow id, and a start while it runs joins it (USE_EXISTING). Once it has closed, a
    customer who is free and convertible again (a manual downgrade) converts anew: the
    id may be reused, and every key the saga sends comes from this start's request id.
    """
    request = "auto-" + uuid.uuid4().hex[:16]
    try:
        await client.start_workflow(
            UpgradeWorkflow.run,
            UpgradeInput(
                customer_id=customer_id,
                target_tier=AUTO_UPGRADE_TIER,
                reason="auto_conversion",
                request_id=request,
            ),
            id=auto_upgrade_id(customer_id),
            task_queue=settings.task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            search_attributes=search_attributes(customer_id=customer_id, tier=Tier.FREE),
            static_summary=f"Convert {customer_id} from free to starter: over the free API limit",
        )
    except WorkflowAlreadyStartedError:
        return False
    return True


# --- What runs ----------------------------------------------------------------------


async def exists(client: Client, workflow_id: str) -> bool:
    with translated(workflow_id):
        try:
            await client.get_workflow_handle(workflow_id).describe()
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return False
            raise
    return True


async def is_running(client: Client, workflow_id: str) -> bool:
    with translated(workflow_id):
        try:
            desc = await client.get_workflow_handle(workflow_id).describe()
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return False
            raise
    return desc.status == WorkflowExecutionStatus.RUNNING


# --- Signals and queries of the charge saga ---------------------------------------------


async def retry_now(client: Client, workflow_id: str, request: RetryNow) -> None:
    """Wake a dunning saga to try at once (pay now, a new payment method)."""
    with translated(workflow_id):
        handle = client.get_workflow_handle(workflow_id)
        await handle.signal(ChargeWorkflow.retry_now, request)


async def settle(client: Client, workflow_id: str, settlement: Settlement) -> None:
    """A bank transfer's final word, from the gateway's webhook, to the saga that waits."""
    with translated(workflow_id):
        handle = client.get_workflow_handle(workflow_id)
        await handle.signal(ChargeWorkflow.settle, settlement)


async def pay_requests(client: Client, workflow_id: str) -> list[str]:
    """The pay-now request ids a charge saga took (raises WorkflowQueryFailedError for a
    saga from before the query existed)."""
    with translated(workflow_id):
        handle = client.get_workflow_handle(workflow_id)
        return await handle.query(ChargeWorkflow.requests)


async def on_payment_method_attached(state: AppState, customer_id: str) -> None:
    """A new payment method wakes every dunning saga of the customer to try it now.

    `create_app`'s default for `AppState.payment_method_attached`; tests pass their own."""
    for row in await state.pool.fetch(bills_sql.OPEN_BILLS, customer_id):
        workflow_id = charge_id(row["id"])
        if await is_running(state.temporal, workflow_id):
            await retry_now(state.temporal, workflow_id, RetryNow(reason="new payment method"))
