"""`POST /v1/webhooks/gateway`: a signed gateway event becomes a workflow signal."""

from __future__ import annotations

import logging
import time

from fastapi import APIRouter, Request
from pydantic import ValidationError

from activities.gateway_messages import Settlement
from activities.ledger_messages import PaymentReceivedInput
from api.auth import StateDep
from api.deps import AppState
from api.schemas import ERRORS
from api.temporal import is_running, settle, start
from billing.errors import InvalidInput
from billing.webhooks import CHARGE_SETTLED, SIGNATURE_HEADER, GatewayEvent, verify
from billing.workflow_ids import payment_received_id
from workflows.payment_received import PaymentReceivedWorkflow

router = APIRouter(tags=["webhooks"], responses=ERRORS)
log = logging.getLogger("api.webhooks")


@router.post("/v1/webhooks/gateway")
async def gateway_webhook(request: Request, state: StateDep) -> dict[str, object]:
    """Authenticated by its HMAC signature and timestamp, not by a key."""
    body = await request.body()
    verify(
        state.settings.gateway_webhook_secret.get_secret_value(),
        body,
        request.headers.get(SIGNATURE_HEADER),
        int(time.time()),
        int(state.settings.webhook_tolerance_delta.total_seconds()),
    )
    try:
        event = GatewayEvent.model_validate_json(body)
    except ValidationError as exc:
        raise InvalidInput("the webhook body is not a gateway event") from exc
    workflow_id = event.data.metadata.get("workflow_id")
    if not workflow_id or not await is_running(state.temporal, workflow_id):
        # No saga waits for it: money that reached the gateway still reaches the ledger.
        started = await _record_without_saga(state, event)
        log.warning(
            "webhook %s for %s: no running saga; recorded by %s", event.id, workflow_id, started
        )
        answer: dict[str, object] = {"received": True, "signalled": False}
        return answer if started is None else answer | {"workflow_id": started}
    settlement = Settlement(
        gateway_reference=event.data.gateway_reference,
        status="succeeded" if event.type == CHARGE_SETTLED else "failed",
        authorization_code=event.data.authorization_code,
        decline_code=event.data.decline_code,
        message=event.data.message,
    )
    await settle(state.temporal, workflow_id, settlement)
    return {"received": True, "signalled": True}


async def _record_without_saga(state: AppState, event: GatewayEvent) -> str | None:
    """A settled transfer whose saga has ended: PaymentReceivedWorkflow records it, once."""
    bill_id = event.data.metadata.get("bill_id")
    if event.type != CHARGE_SETTLED or not bill_id:
        return None  # a failed transfer moved no money; reconciliation lists the rest
    reference = event.data.gateway_reference
    return await start(
        state.temporal,
        state.settings,
        PaymentReceivedWorkflow.run,
        PaymentReceivedInput(
            bill_id=bill_id,
            gateway_reference=reference,
            amount=event.data.amount,
            currency=event.data.currency,
            method="bank_transfer",
            authorization_code=event.data.authorization_code,
            source="webhook",
        ),
        workflow_id=payment_received_id(reference),
        summary=f"Record {event.data.amount} {event.data.currency} for {bill_id} ({reference})",
        already=None,
        customer_id=event.data.metadata.get("customer_id"),
        bill_id=bill_id,
    )
