"""Bills: read them, pay now, refund. Payment and refunds run as sagas, never here."""

from __future__ import annotations

from typing import Annotated, Any

import asyncpg
from fastapi import APIRouter, Header
from temporalio.client import WorkflowQueryFailedError

from api.auth import CallerDep, StateDep, authorize_customer, require_service
from api.flows import RefundBody, Started
from api.schemas import CONFLICT, ERRORS
from api.temporal import exists, is_running, pay_requests, request_id, retry_now, start
from billing.errors import InvalidTransition, NotFound
from billing.ledger import BillState, can_charge
from billing.refunds import check_refund_request
from billing.workflow_ids import charge_id, refund_id
from store.bill_views import bill_view, bill_with_state, customer_bill_views
from store.customers import customer_exists
from workflows.charge import ChargeWorkflow
from workflows.charge_messages import ChargeInput, RetryNow
from workflows.refund import RefundWorkflow
from workflows.refund_messages import RefundInput

router = APIRouter(tags=["bills"], responses=ERRORS)

IdempotencyKey = Annotated[
    str | None,
    Header(
        max_length=64,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="The same key is the same operation (answered again, nothing new "
        "started); a new key, or none, is a new one.",
    ),
]


async def _bill(state: StateDep, caller: CallerDep, bill_id: str) -> dict[str, Any]:
    async with state.pool.acquire() as conn:
        bill = await bill_view(conn, bill_id)
    if bill is None:
        raise NotFound(f"no bill {bill_id}")
    authorize_customer(caller, bill["customer_id"])
    return bill


async def _bill_state(
    state: StateDep, caller: CallerDep, bill_id: str
) -> tuple[asyncpg.Record, BillState]:
    """The bill and what its ledger says, in exact figures, for a rule to decide on."""
    async with state.pool.acquire() as conn:
        found = await bill_with_state(conn, bill_id)
    if found is None:
        raise NotFound(f"no bill {bill_id}")
    authorize_customer(caller, found[0]["customer_id"])
    return found


@router.get("/v1/bills/{bill_id}")
async def get_bill(bill_id: str, state: StateDep, caller: CallerDep) -> dict[str, Any]:
    """A bill with its lines, figures derived from the ledger, and every charge attempt."""
    return await _bill(state, caller, bill_id)


@router.get("/v1/customers/{customer_id}/bills")
async def list_bills(customer_id: str, state: StateDep, caller: CallerDep) -> dict[str, Any]:
    authorize_customer(caller, customer_id)
    async with state.pool.acquire() as conn:
        if not await customer_exists(conn, customer_id):
            raise NotFound(f"no customer {customer_id}")
        bills = await customer_bill_views(conn, customer_id)
    return {"customer_id": customer_id, "bills": bills}


@router.post("/v1/bills/{bill_id}/pay", status_code=202, response_model=Started, responses=CONFLICT)
async def pay_now(
    bill_id: str, state: StateDep, caller: CallerDep, idempotency_key: IdempotencyKey = None
) -> Started:
    """Try the charge now: wakes a running dunning saga, or starts a one-try charge.

    Each request is its own try (its own gateway key); the same `Idempotency-Key` twice
    is one try."""
    bill, ledger = await _bill_state(state, caller, bill_id)
    request = request_id(idempotency_key)
    dunning_id = charge_id(bill_id)
    pay_id = f"{dunning_id}-pay-{request}"
    if idempotency_key and await exists(state.temporal, pay_id):
        return Started(workflow_id=pay_id)  # the same request again: its first answer
    if idempotency_key and await _signalled_before(state, dunning_id, idempotency_key):
        return Started(workflow_id=dunning_id, status="signalled")
    if not can_charge(ledger):
        raise InvalidTransition(f"bill {bill_id} is {ledger.status}; nothing to pay")
    if await is_running(state.temporal, dunning_id):
        await retry_now(state.temporal, dunning_id, RetryNow(reason="pay now", request_id=request))
        return Started(workflow_id=dunning_id, status="signalled")
    workflow_id = await start(
        state.temporal,
        state.settings,
        ChargeWorkflow.run,
        ChargeInput(bill_id=bill_id, customer_id=bill["customer_id"], dunning=False),
        workflow_id=pay_id,
        summary=f"Pay {bill_id} now",
        already=None,
        customer_id=bill["customer_id"],
        tier=bill["tier"],
        bill_id=bill_id,
        period=bill["period"],
    )
    return Started(workflow_id=workflow_id)


async def _signalled_before(state: StateDep, dunning_id: str, request: str) -> bool:
    """Whether this pay-now request already went to the dunning saga as a signal."""
    if not await exists(state.temporal, dunning_id):
        return False
    try:
        taken = await pay_requests(state.temporal, dunning_id)
    except WorkflowQueryFailedError:
        return False  # a saga from before the query existed took no keyed requests
    return request in taken


@router.post(
    "/v1/bills/{bill_id}/refunds", status_code=202, response_model=Started, responses=CONFLICT
)
async def refund(
    bill_id: str,
    body: RefundBody,
    state: StateDep,
    caller: CallerDep,
    idempotency_key: IdempotencyKey = None,
) -> Started:
    """Start the refund saga. The saga is the authority on what is refundable; this
    early check only spares an obviously refused saga. Send `Idempotency-Key` to make
    a retried request start one refund, not two."""
    require_service(caller)
    bill, ledger = await _bill_state(state, caller, bill_id)
    if idempotency_key and await exists(state.temporal, refund_id(bill_id, idempotency_key)):
        # The same request again: its first answer, whatever was refunded since.
        return Started(workflow_id=refund_id(bill_id, idempotency_key))
    amount = check_refund_request(body.amount, ledger, bill["currency"])
    request = request_id(idempotency_key)
    workflow_id = await start(
        state.temporal,
        state.settings,
        RefundWorkflow.run,
        RefundInput(bill_id=bill_id, amount=amount, reason=body.reason, request_id=request),
        workflow_id=refund_id(bill_id, request),
        summary=f"Refund {amount or 'all refundable'} on {bill_id}: {body.reason}"[:200],
        already=None,
        customer_id=bill["customer_id"],
        tier=bill["tier"],
        bill_id=bill_id,
        period=bill["period"],
    )
    return Started(workflow_id=workflow_id)
