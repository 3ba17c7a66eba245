"""The API's side of observability: `/metrics`, request timing, and ids bound for logs."""

from __future__ import annotations

import hmac
import time
from typing import Annotated

from fastapi import APIRouter, Header, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from billing.errors import Unauthenticated
from config.settings import Settings
from observability import logs
from observability.metrics import HTTP_REQUESTS, REGISTRY


class MetricsMiddleware:
    """Times every request under its route template (`/v1/bills/{bill_id}`), never its path."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began = time.perf_counter()
        status = 500  # what the server answers when the app raises before responding

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            HTTP_REQUESTS.labels(scope["method"], template, str(status)).observe(
                time.perf_counter() - began
            )


def metrics_router(settings: Settings) -> APIRouter:
    router = APIRouter(tags=["observability"])
    token = settings.metrics_token.get_secret_value()

    @router.get("/metrics", include_in_schema=False)
    async def metrics(authorization: Annotated[str | None, Header()] = None) -> Response:
        """Prometheus text format; wants `Bearer METRICS_TOKEN` when that is set."""
        if token and not hmac.compare_digest(
            (authorization or "").encode(), f"Bearer {token}".encode()
        ):
            raise Unauthenticated("/metrics wants `Authorization: Bearer <METRICS_TOKEN>`")
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    return router


async def bind_request_ids(request: Request) -> None:
    """An app-wide dependency: path ids go into the log context of the request's task."""
    params = request.path_params
    logs.bind(**{name: params.get(name) for name in logs.CONTEXT_FIELDS})
