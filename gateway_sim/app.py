"""The gateway simulator as its own FastAPI service, with its own SQLite storage."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from config.settings import Settings
from gateway_sim import controls, lookups, routes
from gateway_sim.settlement import Settler
from gateway_sim.state import SimError, SimState, envelope
from gateway_sim.store import Store


def _install_error_handlers(app: FastAPI) -> None:
    async def on_sim_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, SimError)
        return envelope(exc.status, exc.code, exc.message)

    async def on_invalid(request: Request, exc: Exception) -> JSONResponse:
        # Name the fields, never echo the input: a body may carry a payment token.
        assert isinstance(exc, RequestValidationError)
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}"
            for error in exc.errors()
        )
        return envelope(422, "invalid_request", problems)

    app.add_exception_handler(SimError, on_sim_error)
    app.add_exception_handler(RequestValidationError, on_invalid)


def create_app(
    settings: Settings, *, webhook_backoff_s: float = 0.5, webhook_max_attempts: int = 10
) -> FastAPI:
    """Build the simulator; storage opens and unfinished settlements resume in the lifespan."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = Store(settings.gateway_db_path)
        client = httpx.AsyncClient(timeout=5.0)
        settler = Settler(
            store,
            client,
            webhook_url=settings.gateway_webhook_url,
            webhook_secret=settings.gateway_webhook_secret.get_secret_value(),
            backoff_s=webhook_backoff_s,
            max_attempts=webhook_max_attempts,
        )
        app.state.sim = SimState(settings, store, settler, random.Random(settings.gateway_seed))
        settler.resume()
        try:
            yield
        finally:
            await settler.cancel_all()
            await client.aclose()
            store.close()

    app = FastAPI(
        title="Payment gateway simulator",
        version="1",
        summary="Charges, refunds and bank-transfer webhooks, deterministic by seed and token.",
        lifespan=lifespan,
    )
    _install_error_handlers(app)
    app.include_router(routes.router)
    app.include_router(lookups.router)
    app.include_router(controls.router)
    return app
