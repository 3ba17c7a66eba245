"""`POST /v1/webhooks/gateway`: a signed gateway event becomes a workflow signal."""

from __future__ import annotations

import logging
import time

from fastapi import APIRouter, Request
from pydantic import ValidationError

from api.auth import StateDep
from api.schemas import ERRORS
from api.temporal import is_running, translated
from billing.errors import InvalidInput
from billing.messages import Settlement
from billing.webhooks import CHARGE_SETTLED, SIGNATURE_HEADER, GatewayEvent, verify

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
        # Acknowledge, so the gateway stops retrying; the charge saga asks the gateway
        # itself at its deadline, so a settlement is never lost for want of this signal.
        log.warning("webhook %s for %s: no running saga to signal", event.id, workflow_id)
        return {"received": True, "signalled": False}
    settlement = Settlement(
        gateway_reference=event.data.gateway_reference,
        status="succeeded" if event.type == CHARGE_SETTLED else "failed",
        authorization_code=event.data.authorization_code,
        decline_code=event.data.decline_code,
        message=event.data.message,
    )
    with translated(workflow_id):
        await state.temporal.get_workflow_handle(workflow_id).signal("settle", settlement)
    return {"received": True, "signalled": True}
