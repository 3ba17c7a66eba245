"""Starting and signalling workflows from routes; Temporal's errors become domain errors."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from billing.errors import Conflict, DependencyUnavailable, NotFound
from config.settings import Settings
from workflows.search_attributes import search_attributes


@contextmanager
def translated(what: str) -> Iterator[None]:
    """Temporal away is a 503, an unknown workflow a 404: never a 500."""
    try:
        yield
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise NotFound(f"{what} not found") from exc
        raise DependencyUnavailable(f"Temporal did not answer ({exc.status.name})") from exc


async def start(
    client: Client,
    settings: Settings,
    workflow: str,
    arg: Any,
    *,
    workflow_id: str,
    summary: str,
    reuse: WorkflowIDReusePolicy = WorkflowIDReusePolicy.REJECT_DUPLICATE,
    already: str | None,
    **attributes: str | None,
) -> str:
    """Start once. A second start with the same id is a 409 that says `already`; with
    `already` None the id carries the request's own id, so a second start is the same
    request again and answers the first one's id, starting nothing."""
    with translated(workflow_id):
        try:
            await client.start_workflow(
                workflow,
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


def request_id(idempotency_key: str | None) -> str:
    """The request's own id: its Idempotency-Key, else a fresh one (a new operation)."""
    return idempotency_key or uuid.uuid4().hex[:16]
