"""The one place that maps errors to HTTP statuses and the `{error: {code, message}}` envelope.

Answers never carry a stack trace or the caller's input values (a refused card number must
not come back in an error message); validation messages name the field and the rule only.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from redis import exceptions as redis_errors
from starlette.exceptions import HTTPException as StarletteHTTPException

from billing import errors

log = logging.getLogger("api.errors")


def envelope(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        status_code=status,
        content={"error": {"code": code, "message": message}},
        headers=headers,
    )


_STATUS: list[tuple[type[errors.BillingError], int]] = [
    (errors.InvalidInput, 422),
    (errors.Unauthenticated, 401),
    (errors.Forbidden, 403),
    (errors.NotFound, 404),
    (errors.Conflict, 409),
    (errors.RefundRefused, 409),
    (errors.RateLimited, 429),
    (errors.DependencyUnavailable, 503),
]

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_input",
    429: "rate_limited",
}


def status_for(exc: errors.BillingError) -> int:
    for cls, status in _STATUS:
        if isinstance(exc, cls):
            return status
    return 400


def rate_limit_headers(limit: int, remaining: int, reset_at: int) -> dict[str, str]:
    """The X-RateLimit-* trio, on refusals and on successful answers alike."""
    return {
        "X-RateLimit-Limit": str(limit),
        "X-RateLimit-Remaining": str(max(remaining, 0)),
        "X-RateLimit-Reset": str(reset_at),
    }


def _headers_for(exc: errors.BillingError) -> dict[str, str] | None:
    if isinstance(exc, errors.RateLimited):
        headers = rate_limit_headers(exc.limit, exc.remaining, exc.reset_at)
        headers["Retry-After"] = str(max(exc.reset_at - int(time.time()), 1))
        return headers
    if isinstance(exc, errors.Unauthenticated):
        return {"WWW-Authenticate": "Bearer"}
    return None


# A dependency that is away, not a bug: Postgres cut off, refusing or restarting, Redis
# unreachable, a socket refused, reset or timed out (TimeoutError is an OSError). Each is a
# 503 with Retry-After, never a 500: the caller's retry is the right answer.
UNREACHABLE: tuple[type[Exception], ...] = (
    asyncpg.PostgresConnectionError,  # class 08: connection failure, connection gone
    asyncpg.CannotConnectNowError,  # the server is starting up or shutting down
    asyncpg.AdminShutdownError,  # our session was cut by a shutdown
    asyncpg.CrashShutdownError,
    asyncpg.TooManyConnectionsError,
    redis_errors.ConnectionError,
    redis_errors.TimeoutError,
    OSError,
)
_RETRY_AFTER_S = "2"
_DEPENDENCY_OF_MODULE = {"asyncpg": "Postgres", "redis": "Redis", "temporalio": "Temporal"}


def unreachable_dependency(exc: BaseException) -> str:
    """Which dependency an unreachable error came from, by its type or else its traceback."""
    if isinstance(exc, asyncpg.PostgresError):
        return "Postgres"
    if isinstance(exc, redis_errors.RedisError):
        return "Redis"
    tb = exc.__traceback__
    while tb is not None:
        module = str(tb.tb_frame.f_globals.get("__name__", "")).split(".")[0]
        if module in _DEPENDENCY_OF_MODULE:
            return _DEPENDENCY_OF_MODULE[module]
        tb = tb.tb_next
    return "a dependency"


def _where(loc: Sequence[int | str]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def _is_unparseable_body(error: dict[str, Any]) -> bool:
    # FastAPI reports bad JSON as `json_invalid`, and a non-JSON body (wrong or no
    # Content-Type) as raw bytes where the model was expected: both are malformed requests.
    if error.get("type") == "json_invalid":
        return True
    return tuple(error.get("loc", ())) == ("body",) and isinstance(error.get("input"), bytes)


def validation_answer(exc: RequestValidationError) -> JSONResponse:
    """400 for a body that is not JSON at all; 422 naming each field and rule otherwise."""
    problems = list(exc.errors())
    if any(_is_unparseable_body(e) for e in problems):
        return envelope(400, "malformed_json", "the request body is not valid JSON")
    parts = [f"{_where(e.get('loc', ()))}: {e.get('msg', 'invalid')}" for e in problems[:10]]
    return envelope(422, "invalid_input", "; ".join(parts))


def install_error_handlers(app: FastAPI) -> None:
    async def on_billing_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, errors.BillingError)
        return envelope(status_for(exc), exc.code, exc.message, _headers_for(exc))

    async def on_validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return validation_answer(exc)

    async def on_http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
        return envelope(exc.status_code, code, message, dict(exc.headers or {}) or None)

    async def on_unreachable(request: Request, exc: Exception) -> JSONResponse:
        which = unreachable_dependency(exc)
        log.warning(
            "%s unreachable on %s %s: %s",
            which,
            request.method,
            request.url.path,
            type(exc).__name__,
        )
        return envelope(
            503,
            errors.DependencyUnavailable.code,
            f"{which} is unavailable right now; retry shortly",
            {"Retry-After": _RETRY_AFTER_S},
        )

    async def on_unstorable_text(request: Request, exc: Exception) -> JSONResponse:
        # Valid JSON and a valid URL escape, but Postgres text cannot hold it: bad input,
        # refused before anything was written (the failing statement rolled back).
        return envelope(422, "invalid_input", "text may not contain the NUL character (\\u0000)")

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        # The trace goes to the log, never into the answer.
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return envelope(500, "internal_error", "internal error; the failure was logged")

    app.add_exception_handler(errors.BillingError, on_billing_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(asyncpg.CharacterNotInRepertoireError, on_unstorable_text)
    for unreachable in UNREACHABLE:
        app.add_exception_handler(unreachable, on_unreachable)
    app.add_exception_handler(Exception, on_unexpected)
