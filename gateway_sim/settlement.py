"""Bank transfers settle after the configured delay and are reported by a signed webhook.

State lives in SQLite, so a restart resumes both: transfers still pending are scheduled
again, and settled ones whose webhook was not yet delivered are delivered again with the
same event id (receivers dedupe on it). Delivery is bounded: `max_attempts` tries.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

import httpx

from billing.webhooks import CHARGE_FAILED, CHARGE_SETTLED, SIGNATURE_HEADER, sign
from gateway_sim.decide import new_reference
from gateway_sim.store import ChargeRow, Store

log = logging.getLogger("gateway_sim.settlement")


def event_body(row: ChargeRow) -> bytes:
    """The webhook body; built from stored fields only, so every retry sends the same bytes."""
    assert row.event_id is not None
    assert row.settled_at is not None
    data: dict[str, Any] = {
        "status": row.status,
        "gateway_reference": row.reference,
        "amount": str(row.amount),
        "currency": row.currency,
        "authorization_code": row.authorization_code,
        "decline_code": row.decline_code,
        "decline_kind": row.decline_kind,
        "message": row.message,
        "idempotency_key": row.idempotency_key,
        "metadata": row.metadata,
    }
    kind = CHARGE_SETTLED if row.status == "succeeded" else CHARGE_FAILED
    event = {"id": row.event_id, "type": kind, "created": row.settled_at, "data": data}
    return json.dumps(event, separators=(",", ":")).encode()


class Settler:
    """Owns the background tasks that settle transfers and deliver their webhooks."""

    def __init__(
        self,
        store: Store,
        client: httpx.AsyncClient,
        *,
        webhook_url: str,
        webhook_secret: str,
        backoff_s: float,
        max_attempts: int,
    ) -> None:
        self._store = store
        self._client = client
        self._url = webhook_url
        self._secret = webhook_secret
        self._backoff_s = backoff_s
        self._max_attempts = max_attempts
        self._tasks: set[asyncio.Task[None]] = set()

    def _spawn(self, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def resume(self) -> None:
        """Schedule what a previous process left unfinished."""
        for row in self._store.pending_settlements():
            self.schedule(row.reference, row.settle_at or time.time())
        for row in self._store.undelivered_webhooks():
            self._spawn(self._deliver(row.reference))

    def schedule(self, reference: str, settle_at: float) -> None:
        self._spawn(self._settle(reference, settle_at))

    async def cancel_all(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _settle(self, reference: str, settle_at: float) -> None:
        await asyncio.sleep(max(0.0, settle_at - time.time()))
        if self._store.settle(reference, new_reference("evt"), int(time.time())):
            row = self._store.charge(reference)
            log.info("settled %s as %s", reference, row.status if row else "?")
            await self._deliver(reference)

    async def _deliver(self, reference: str) -> None:
        row = self._store.charge(reference)
        if row is None:
            return
        body = event_body(row)
        first = row.webhook_attempts + 1
        for attempt in range(first, self._max_attempts + 1):
            headers = {
                "Content-Type": "application/json",
                SIGNATURE_HEADER: sign(self._secret, body, int(time.time())),
            }
            try:
                response = await self._client.post(self._url, content=body, headers=headers)
                outcome = f"HTTP {response.status_code}"
                delivered = response.is_success
            except httpx.HTTPError as exc:
                outcome, delivered = type(exc).__name__, False
            state = "delivered" if delivered else "pending"
            if not delivered and attempt == self._max_attempts:
                state = "failed"
            self._store.record_webhook_attempt(reference, state)
            log.log(
                logging.INFO if delivered else logging.WARNING,
                "webhook %s for %s key=%s try %d/%d: %s",
                row.event_id,
                reference,
                row.idempotency_key,
                attempt,
                self._max_attempts,
                outcome,
            )
            if delivered:
                return
            if attempt < self._max_attempts:
                await asyncio.sleep(min(self._backoff_s * 2 ** (attempt - 1), 60.0))
        if first <= self._max_attempts:
            log.warning(
                "webhook %s for %s abandoned after %d tries",
                row.event_id,
                reference,
                self._max_attempts,
            )
