"""Routes that start sagas: tier changes, a customer's billing cycle, a billing run."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter
from temporalio.common import WorkflowIDReusePolicy

from api.auth import CallerDep, StateDep, require_service
from api.flows import PeriodBody, Started, UpgradeBody
from api.routes.bills import IdempotencyKey
from api.schemas import CONFLICT, ERRORS
from api.temporal import exists, request_id, start
from billing.errors import InvalidTransition, NotFound
from billing.periods import parse_period, require_ended, require_subscribed
from billing.workflow_ids import billing_cycle_id, billing_run_id, manual_upgrade_id
from store.customers import CustomerRow, get_customer
from workflows.billing_cycle import BillingCycleWorkflow
from workflows.billing_cycle_messages import BillingCycleInput
from workflows.billing_run import BillingRunWorkflow
from workflows.billing_run_messages import BillingRunInput
from workflows.upgrade import UpgradeWorkflow
from workflows.upgrade_messages import UpgradeInput

router = APIRouter(tags=["billing"], responses=ERRORS | CONFLICT)


async def _customer(state: StateDep, customer_id: str) -> CustomerRow:
    customer = await get_customer(state.pool, customer_id)
    if customer is None:
        raise NotFound(f"no customer {customer_id}")
    return customer


@router.post("/v1/customers/{customer_id}/upgrade", status_code=202, response_model=Started)
async def upgrade(
    customer_id: str,
    body: UpgradeBody,
    state: StateDep,
    caller: CallerDep,
    idempotency_key: IdempotencyKey = None,
) -> Started:
    """Start the upgrade (or downgrade) saga. Tier changes of one customer run one at a
    time, in arrival order; each request is a new change (the same key, the same one)."""
    require_service(caller)
    request = request_id(idempotency_key)
    workflow_id = manual_upgrade_id(customer_id, body.tier.value, request)
    customer = await _customer(state, customer_id)
    if idempotency_key and await exists(state.temporal, workflow_id):
        return Started(workflow_id=workflow_id)  # the same request again: its first answer
    if customer.tier == body.tier.value:
        raise InvalidTransition(f"{customer_id} is already on {body.tier.value}")
    await start(
        state.temporal,
        state.settings,
        UpgradeWorkflow.run,
        UpgradeInput(
            customer_id=customer_id,
            target_tier=body.tier.value,
            reason="manual",
            request_id=request,
        ),
        workflow_id=workflow_id,
        summary=f"Move {customer_id} from {customer.tier} to {body.tier.value}",
        already=None,
        customer_id=customer_id,
        tier=customer.tier,
    )
    return Started(workflow_id=workflow_id)


@router.post("/v1/customers/{customer_id}/billing-cycles", status_code=202, response_model=Started)
async def bill_customer(
    customer_id: str, body: PeriodBody, state: StateDep, caller: CallerDep
) -> Started:
    """Bill one ended period once: a second request is a 409 naming the first workflow."""
    require_service(caller)
    period = parse_period(body.period)
    require_ended(period, datetime.now(UTC))
    customer = await _customer(state, customer_id)
    require_subscribed(customer_id, period, customer.started_at)
    workflow_id = await start(
        state.temporal,
        state.settings,
        BillingCycleWorkflow.run,
        BillingCycleInput(customer_id=customer_id, period=period),
        workflow_id=billing_cycle_id(customer_id, period),
        summary=f"Bill {customer_id} for {period}",
        already=f"{period} is already billed for {customer_id}",
        customer_id=customer_id,
        tier=customer.tier,
        period=period,
    )
    return Started(workflow_id=workflow_id)


@router.post("/v1/billing-runs", status_code=202, response_model=Started)
async def billing_run(body: PeriodBody, state: StateDep, caller: CallerDep) -> Started:
    """Bill every customer for an ended period; customers already billed are skipped."""
    require_service(caller)
    period = parse_period(body.period)
    require_ended(period, datetime.now(UTC))
    workflow_id = await start(
        state.temporal,
        state.settings,
        BillingRunWorkflow.run,
        BillingRunInput(period=period),
        workflow_id=billing_run_id(period),
        reuse=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        summary=f"Bill every customer for {period}",
        already=f"a billing run for {period} is already running",
        period=period,
    )
    return Started(workflow_id=workflow_id)
