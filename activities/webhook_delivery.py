"""One delivery attempt: POST the signed event to the endpoint, log what happened.

A receiver's failure (non-2xx, timeout, refused address) is an outcome, not an activity
error: the workflow owns the retry schedule. Only Postgres failing raises, and Temporal
retries that; the event then goes out again with the same `webhook-id`, which is what
at-least-once means.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import secrets
import socket
import time
from collections import Counter
from datetime import UTC, datetime
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
from temporalio import activity

from billing.events import event_body, signature_headers
from billing.outbound import (
    MAX_ERROR_LENGTH,
    Address,
    AttemptInput,
    AttemptOutcome,
    refused_addresses,
)
from config.settings import Settings
from store import webhook_deliveries as sql
from store.webhook_endpoints import EndpointRow

USER_AGENT = "billing-sagas-webhooks/1"
# Requests one worker has open to one endpoint; beyond that an attempt is not sent but
# counted as failed and retried on the schedule, so a hung receiver holds few connections.
IN_FLIGHT_PER_ENDPOINT = 20


class Refused(Exception):
    """The URL may not be called (an address is private, or the name does not resolve)."""


async def _resolve(host: str, port: int) -> list[Address]:
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise Refused(f"cannot resolve {host}: {exc.strerror}") from exc
    # A link-local IPv6 answer carries its zone (`fe80::1%eth0`); the address is before it.
    return [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]


async def pinned_target(url: str) -> tuple[str, dict[str, str], dict[str, str]]:
    """The URL with its host replaced by a checked public address, the Host header and the
    TLS server name: the request goes to the address that was checked, not to whatever
    the name resolves to a moment later (DNS rebinding)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    addresses = await _resolve(host, port)
    refused = refused_addresses(addresses)
    if refused or not addresses:
        raise Refused(f"{host} resolves to a private or reserved address ({refused[0]})"
                      if refused else f"{host} has no address")  # fmt: skip
    address = addresses[0]
    literal = f"[{address}]" if address.version == 6 else str(address)
    netloc = f"{literal}:{parts.port}" if parts.port else literal
    pinned = urlunsplit(parts._replace(netloc=netloc))
    host_header = parts.netloc.rsplit("@", 1)[-1]
    return pinned, {"Host": host_header}, {"sni_hostname": host}


def _clip(text: str) -> str:
    return text if len(text) <= MAX_ERROR_LENGTH else text[: MAX_ERROR_LENGTH - 1] + "…"


class WebhookDeliveryActivities:
    def __init__(self, pool: asyncpg.Pool, settings: Settings) -> None:
        self.pool = pool
        self.settings = settings
        self._tls = httpx.create_ssl_context()
        self._in_flight: Counter[str] = Counter()

    async def _post(self, url: str, body: str, headers: dict[str, str]) -> AttemptOutcome:
        extensions: dict[str, str] = {}
        if not self.settings.webhooks_reach_private:
            url, host, extensions = await pinned_target(url)
            headers = {**headers, **host}
        timeout = self.settings.webhook_timeout_delta.total_seconds()
        started = time.monotonic()
        # trust_env=False: no proxy from the environment between the check and the call.
        async with (
            httpx.AsyncClient(
                timeout=timeout, follow_redirects=False, verify=self._tls, trust_env=False
            ) as client,
            client.stream(
                "POST", url, content=body.encode(), headers=headers, extensions=extensions
            ) as answer,
        ):
            # The receiver's body is never read: its status is the whole answer.
            latency = int((time.monotonic() - started) * 1000)
        code = answer.status_code
        if 200 <= code < 300:
            return AttemptOutcome(result="delivered", status_code=code, latency_ms=latency)
        error = f"answered {code}"
        if answer.is_redirect:
            error += f" (redirects are not followed: {answer.headers.get('location', '')})"
        return AttemptOutcome(
            result="failed", status_code=code, latency_ms=latency, error=_clip(error)
        )

    async def _send(self, ctx: asyncpg.Record, endpoint: EndpointRow) -> AttemptOutcome:
        now: datetime = ctx["now"]
        body = event_body(
            event_id=ctx["id"],
            type=ctx["type"],
            created_at=ctx["created_at"],
            customer_id=ctx["customer_id"],
            sequence=ctx["sequence"],
            data=json.loads(ctx["data"]),
        )
        headers = {
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            **signature_headers(
                event_id=ctx["id"],
                timestamp=datetime.now(UTC),
                body=body,
                signing_secrets=endpoint.signing_secrets(now),
            ),
        }
        started = time.monotonic()
        try:
            return await self._post(endpoint.url, body, headers)
        except Refused as exc:
            return AttemptOutcome(result="failed", error=_clip(f"not sent: {exc}"))
        except httpx.HTTPError as exc:
            latency = int((time.monotonic() - started) * 1000)
            detail = str(exc) or type(exc).__name__
            return AttemptOutcome(
                result="failed", latency_ms=latency, error=_clip(f"{type(exc).__name__}: {detail}")
            )

    @activity.defn
    async def attempt_delivery(self, req: AttemptInput) -> AttemptOutcome:
        """POST the event once; the attempt and the event's state with the endpoint logged."""
        ctx = await self.pool.fetchrow(sql.ATTEMPT_CONTEXT, req.event_id, req.endpoint_id)
        if ctx is None:
            return AttemptOutcome(result="endpoint_gone")  # deleted: its log went with it
        if not ctx["enabled"]:
            await self.pool.execute(sql.SET_STATE, req.event_id, req.endpoint_id, "cancelled")
            return AttemptOutcome(result="endpoint_disabled")
        endpoint = EndpointRow(
            id=req.endpoint_id,
            url=ctx["url"],
            description="",
            events=[],
            enabled=True,
            disabled_reason=None,
            secret=ctx["secret"],
            previous_secret=ctx["previous_secret"],
            previous_secret_expires_at=ctx["previous_secret_expires_at"],
            created_at=ctx["now"],
            updated_at=ctx["now"],
        )
        if self._in_flight[req.endpoint_id] >= IN_FLIGHT_PER_ENDPOINT:
            busy = f"not sent: {IN_FLIGHT_PER_ENDPOINT} requests to this endpoint still open"
            outcome = AttemptOutcome(result="failed", error=busy)
        else:
            self._in_flight[req.endpoint_id] += 1
            try:
                outcome = await self._send(ctx, endpoint)
            finally:
                self._in_flight[req.endpoint_id] -= 1
        await self._log(req, outcome)
        return outcome

    async def _log(self, req: AttemptInput, outcome: AttemptOutcome) -> None:
        delivered = outcome.result == "delivered"
        next_delay = None if delivered else req.next_delay
        status = "delivered" if delivered else ("pending" if next_delay else "failed")
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                sql.LOG_ATTEMPT,
                "whd_" + secrets.token_hex(10),
                req.event_id,
                req.endpoint_id,
                req.workflow_id,
                req.attempt,
                outcome.status_code,
                outcome.latency_ms,
                outcome.error,
                next_delay,
                delivered,
            )
            await conn.execute(
                sql.RECORD_STATE,
                req.event_id,
                req.endpoint_id,
                req.workflow_id,
                status,
                outcome.status_code,
                next_delay,
            )
