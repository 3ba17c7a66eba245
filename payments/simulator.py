"""The adapter for the gateway simulator's HTTP API, translating its failures to our errors.

Declines come back as `ChargeOutcome(status=FAILED)`. Timeouts, connection errors and 5xx
raise DependencyUnavailable: the outcome is unknown, so the caller retries with the same
idempotency key, and past its budget looks the key up (`find_charge`, `find_refund`), which
answers None only when the gateway holds nothing under it. Exception messages name the
operation and key, never the token.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import quote

import httpx

from billing import errors
from billing.payments import (
    ChargeOutcome,
    ChargeRequest,
    RefundOutcome,
    RefundRequest,
    TransactionPage,
)


def _error_message(response: httpx.Response) -> tuple[str, str]:
    try:
        error = response.json()["error"]
        return str(error["code"]), str(error["message"])
    except (ValueError, KeyError, TypeError):
        return "http_error", f"HTTP {response.status_code}"


class SimulatorGateway:
    """One reused AsyncClient against the simulator at `base_url`; close with `aclose()`."""

    def __init__(
        self, base_url: str, *, timeout_s: float = 10.0, client: httpx.AsyncClient | None = None
    ) -> None:
        self._client = client or httpx.AsyncClient(timeout=timeout_s)
        self._owns_client = client is None
        self._base_url = base_url.rstrip("/")

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    async def _send(
        self,
        method: str,
        path: str,
        what: str,
        body: Any = None,
        params: dict[str, str | int] | None = None,
    ) -> httpx.Response:
        url = self._base_url + path
        try:
            response = await self._client.request(method, url, json=body, params=params)
        except httpx.TimeoutException as exc:
            raise errors.DependencyUnavailable(f"gateway timed out on {what}") from exc
        except httpx.TransportError as exc:
            raise errors.DependencyUnavailable(
                f"gateway unreachable on {what}: {type(exc).__name__}"
            ) from exc
        if response.status_code >= 500 or response.status_code == 429:
            code, message = _error_message(response)
            raise errors.DependencyUnavailable(f"gateway {code} on {what}: {message}")
        return response

    def _raise_for_client_error(self, response: httpx.Response, what: str) -> None:
        if response.is_success:
            return
        code, message = _error_message(response)
        text = f"gateway refused {what}: {code}: {message}"
        if response.status_code == 404:
            raise errors.NotFound(text)
        if response.status_code == 409:
            raise errors.Conflict(text)
        if code == errors.CardNumberRefused.code:
            raise errors.CardNumberRefused(text)
        if response.status_code in (400, 422):
            raise errors.InvalidInput(text)
        raise errors.BillingError(text)

    async def charge(self, request: ChargeRequest) -> ChargeOutcome:
        what = f"charge key={request.idempotency_key}"
        response = await self._send("POST", "/v1/charges", what, request.model_dump(mode="json"))
        self._raise_for_client_error(response, what)
        return ChargeOutcome.model_validate(response.json())

    async def refund(self, request: RefundRequest) -> RefundOutcome:
        what = f"refund key={request.idempotency_key} of {request.charge_reference}"
        response = await self._send("POST", "/v1/refunds", what, request.model_dump(mode="json"))
        if response.status_code in (404, 409, 422):
            code, message = _error_message(response)
            raise errors.RefundRefused(f"{code}: {message}")
        self._raise_for_client_error(response, what)
        return RefundOutcome.model_validate(response.json())

    async def get_charge(self, gateway_reference: str) -> ChargeOutcome:
        what = f"get charge {gateway_reference}"
        response = await self._send("GET", f"/v1/charges/{quote(gateway_reference, safe='')}", what)
        self._raise_for_client_error(response, what)
        return ChargeOutcome.model_validate(response.json())

    async def _find(self, path: str, what: str, key: str) -> dict[str, Any] | None:
        response = await self._send("GET", path, what, params={"idempotency_key": key})
        self._raise_for_client_error(response, what)
        found: list[dict[str, Any]] = response.json()["data"]
        return found[0] if found else None

    async def find_charge(self, idempotency_key: str) -> ChargeOutcome | None:
        found = await self._find(
            "/v1/charges", f"find charge key={idempotency_key}", idempotency_key
        )
        return ChargeOutcome.model_validate(found) if found is not None else None

    async def find_refund(self, idempotency_key: str) -> RefundOutcome | None:
        found = await self._find(
            "/v1/refunds", f"find refund key={idempotency_key}", idempotency_key
        )
        return RefundOutcome.model_validate(found) if found is not None else None

    async def list_transactions(
        self, since: datetime, cursor: str | None = None, limit: int = 100
    ) -> TransactionPage:
        what = f"list transactions since {since.isoformat()}"
        params: dict[str, str | int] = {"since": since.isoformat(), "limit": limit}
        if cursor is not None:
            params["cursor"] = cursor
        response = await self._send("GET", "/v1/transactions", what, params=params)
        self._raise_for_client_error(response, what)
        page = response.json()
        return TransactionPage(transactions=page["data"], next_cursor=page["next_cursor"])
