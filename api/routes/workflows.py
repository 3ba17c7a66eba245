"""`GET /v1/workflows/{id}`: a saga's status and step, read by a workflow query."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter
from temporalio.client import WorkflowQueryFailedError, WorkflowQueryRejectedError
from temporalio.service import RPCError

from api.auth import CallerDep, StateDep, authorize_customer
from api.flows import WorkflowStatus
from api.schemas import ERRORS
from api.temporal import translated
from billing.errors import Forbidden
from workflows.search_attributes import CUSTOMER_ID
from workflows.status import SagaStatus, SagaWorkflow

# A query waits for a worker to answer it: with none polling it would hang the request.
_QUERY_TIMEOUT = timedelta(seconds=3)

router = APIRouter(tags=["workflows"], responses=ERRORS)


@router.get("/v1/workflows/{workflow_id}", response_model=WorkflowStatus)
async def workflow_status(workflow_id: str, state: StateDep, caller: CallerDep) -> WorkflowStatus:
    handle = state.temporal.get_workflow_handle(workflow_id)
    with translated(f"workflow {workflow_id}"):
        desc = await handle.describe()
    customer = desc.typed_search_attributes.get(CUSTOMER_ID)
    if caller.kind == "customer":
        if customer is None:
            raise Forbidden("this key may only read its own customer's workflows")
        authorize_customer(caller, customer)
    saga: SagaStatus | None = None
    try:
        # Not `translated`: a query nobody answers in time leaves `step` empty, not a 503.
        saga = await handle.query(SagaWorkflow.status, rpc_timeout=_QUERY_TIMEOUT)
    except (WorkflowQueryRejectedError, WorkflowQueryFailedError, RPCError):
        saga = None  # e.g. no worker polls just now: the status still answers
    status = desc.status.name if desc.status is not None else "UNKNOWN"
    return WorkflowStatus(
        workflow_id=workflow_id,
        status=status,
        step=saga.step if saga else None,
        details={
            "type": desc.workflow_type,
            "customer_id": customer,
            "summary": saga.details if saga else "",
            "bill_id": saga.bill_id if saga else None,
            "started_at": desc.start_time.isoformat() if desc.start_time else None,
            "closed_at": desc.close_time.isoformat() if desc.close_time else None,
        },
    )
