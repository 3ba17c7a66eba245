"""Reactions to customer changes that concern running sagas."""

from __future__ import annotations

from api.deps import AppState
from api.temporal import is_running, translated
from billing.workflow_ids import charge_id
from store import bills as bills_sql
from workflows.charge_messages import RetryNow


async def on_payment_method_attached(state: AppState, customer_id: str) -> None:
    """A new payment method wakes every dunning saga of the customer to try it now."""
    for row in await state.pool.fetch(bills_sql.OPEN_BILLS, customer_id):
        workflow_id = charge_id(row["id"])
        if await is_running(state.temporal, workflow_id):
            with translated(workflow_id):
                await state.temporal.get_workflow_handle(workflow_id).signal(
                    "retry_now", RetryNow(reason="new payment method")
                )
