"""Reconciliation on demand: start one, read its report. The daily one runs on a Schedule."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header
from pydantic import BaseModel, Field, field_validator
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from api.auth import CallerDep, StateDep, require_service
from api.flows import Body
from api.schemas import ERRORS
from api.temporal import translated
from billing.errors import InvalidInput, NotFound
from billing.reconciliation import ReconciliationInput, default_since, report_id
from billing.workflow_ids import reconciliation_id
from store import reconciliations as sql
from workflows.reconciliation import ReconciliationWorkflow

router = APIRouter(tags=["reconciliations"], responses=ERRORS)


class ReconcileBody(Body):
    since: datetime | None = Field(
        default=None,
        examples=["2026-05-01T00:00:00Z"],
        description="Compare the gateway's transactions from this time on; default: 2 days ago",
    )

    @field_validator("since")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and (value.tzinfo is None or value.utcoffset() is None):
            raise ValueError("needs a time zone (e.g. Z or +00:00)")
        return value


class ReconciliationStarted(BaseModel):
    workflow_id: str
    id: str = Field(description="The report's id, for GET /v1/reconciliations/{id}")
    status: str = "started"


@router.post("/v1/reconciliations", status_code=202, response_model=ReconciliationStarted)
async def reconcile(
    state: StateDep,
    caller: CallerDep,
    body: ReconcileBody | None = None,
    idempotency_key: Annotated[
        str | None, Header(max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    ] = None,
) -> ReconciliationStarted:
    """Compare every gateway charge and refund since `since` with the ledger; record what
    it lacks. The same `Idempotency-Key` answers with the run it started, starting nothing."""
    require_service(caller)
    now = datetime.now(UTC)
    since = (body.since if body else None) or default_since(now)
    if since > now:
        raise InvalidInput("since: must not be in the future")
    request_id = idempotency_key or uuid.uuid4().hex[:12]
    workflow_id = reconciliation_id(request_id)
    rid = report_id(request_id)
    # The running report exists before the run does, so a GET right after this finds it.
    created = await state.pool.fetchval(sql.BEGIN_REPORT, rid, workflow_id, since)
    answer = ReconciliationStarted(workflow_id=workflow_id, id=rid)
    try:
        with translated(workflow_id):
            await state.temporal.start_workflow(
                ReconciliationWorkflow.run,
                ReconciliationInput(since=since, request_id=request_id),
                id=workflow_id,
                task_queue=state.settings.task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
                static_summary=f"Reconcile the gateway with the ledger since {since:%Y-%m-%d}",
            )
    except WorkflowAlreadyStartedError:
        return answer.model_copy(update={"status": "already_started"})
    except Exception:
        if created is not None:  # this request's row, for a run that never began
            await state.pool.execute(sql.FORGET_UNSTARTED, rid)
        raise
    return answer


@router.get("/v1/reconciliations/{reconciliation_id}")
async def get_reconciliation(
    reconciliation_id: str, state: StateDep, caller: CallerDep
) -> dict[str, Any]:
    """The report as saved: running with its progress so far, or completed."""
    require_service(caller)
    row = await state.pool.fetchrow(sql.GET_REPORT, reconciliation_id)
    if row is None:
        raise NotFound(f"no reconciliation {reconciliation_id}")
    return {
        "id": row["id"],
        "workflow_id": row["workflow_id"],
        "status": row["status"],
        "since": row["since"],
        "checked": row["checked"],
        "matched": row["matched"],
        "fixed": row["fixed"],
        "unresolved": row["unresolved"],
        "created_at": row["created_at"],
        "finished_at": row["finished_at"],
    }
