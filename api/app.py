"""The FastAPI application: thin routes that validate, write or start a workflow, and answer."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import asyncpg
from fastapi import Depends, FastAPI
from redis.asyncio import Redis
from temporalio.client import Client
from temporalio.service import RetryConfig

from api.deps import AppState, PaymentMethodHook
from api.errors import install_error_handlers
from api.routes import (
    billing,
    bills,
    customers,
    events,
    health,
    reconciliations,
    reports,
    usage,
    webhook_endpoints,
    webhooks,
    workflows,
)
from api.temporal import on_payment_method_attached
from config.settings import Settings
from observability.api import install_observability
from observability.codec import data_converter
from observability.http import bind_request_ids
from observability.tracing import client_interceptors
from observability.worker_metrics import logging_runtime
from store.db import create_pool
from store.limiter import RateLimiter
from store.rebuild import CounterWatch

# Redis sits on every usage request: a dead Redis must cost milliseconds, not seconds,
# before the rate_limit_redis_down policy decides.
_REDIS_TIMEOUT_S = 0.5
# A request waits for Temporal at most about 2 s before it answers 503, not the
# client's default 10 s of retries.
_TEMPORAL_RETRY = RetryConfig(max_elapsed_time_millis=2_000, max_retries=4)


# Each step of shutdown gets this long; a stuck one is logged and forced, so SIGTERM to
# the API always ends the process.
SHUTDOWN_STEP_S = 10.0

log = logging.getLogger("api.app")


def _utc_now() -> datetime:
    return datetime.now(UTC)


async def _close(
    watch: CounterWatch, watching: asyncio.Task[None], redis: Redis, pool: asyncpg.Pool
) -> None:
    """Stop the counter watch, then close Redis and Postgres, each step bounded."""
    watch.stop()
    watching.cancel()  # and interrupt a look in progress
    _, pending = await asyncio.wait({watching}, timeout=SHUTDOWN_STEP_S)
    if pending:
        log.error("counter watch still running %.0f s after its stop; left", SHUTDOWN_STEP_S)
    await redis.aclose()
    try:
        await asyncio.wait_for(pool.close(), SHUTDOWN_STEP_S)
    except TimeoutError:
        # asyncpg waits for every connection to come back; one that never does (a
        # request still running, a leaked acquire) would hold shutdown for ever.
        log.error("Postgres pool not closed after %.0f s; terminated", SHUTDOWN_STEP_S)
        pool.terminate()


def create_app(
    settings: Settings | None = None,
    *,
    clock: Callable[[], datetime] | None = None,
    payment_method_attached: PaymentMethodHook = on_payment_method_attached,
) -> FastAPI:
    """Build the app; dependencies connect in the lifespan, not at import.

    `settings`: the process's one Settings (built here when uvicorn calls the factory).
    `clock` is what "now" means for usage (its hour window and default occurred_at), so
    tests can pin the hour instead of racing the clock. `payment_method_attached` is what
    a new payment method sets off (by default: wake the customer's dunning sagas).
    """
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = await create_pool(settings.database_url, min_size=1, max_size=20)
        redis = Redis.from_url(
            settings.redis_url,
            socket_timeout=_REDIS_TIMEOUT_S,
            socket_connect_timeout=_REDIS_TIMEOUT_S,
        )
        temporal = await Client.connect(
            settings.temporal_address,
            namespace=settings.temporal_namespace,
            data_converter=data_converter(settings),
            interceptors=client_interceptors(tracing),
            runtime=logging_runtime(),
            retry_config=_TEMPORAL_RETRY,
            lazy=True,
        )
        app.state.billing = AppState(
            settings=settings,
            pool=pool,
            redis=redis,
            temporal=temporal,
            payment_method_attached=payment_method_attached,
        )
        app.state.limiter = RateLimiter(redis, clock=clock or _utc_now)
        if not await app.state.limiter.warm():
            log.warning("Redis unreachable at start; the limiter will connect when it answers")
        # Redis's counters are a cache of Postgres, rebuilt whenever Redis comes back. Real
        # time, not `clock`: the rebuild counts rows by their recorded_at, Postgres's clock.
        app.state.counter_watch = CounterWatch(pool, redis)
        # The first look before the first request: on a new or emptied Redis the counters
        # are rebuilt before traffic can race the rebuild (which would drop what it counts).
        await app.state.counter_watch.check_once()
        watching = asyncio.create_task(app.state.counter_watch.run())
        try:
            yield
        finally:
            await _close(app.state.counter_watch, watching, redis, pool)
            if tracing is not None:
                await asyncio.to_thread(tracing.shutdown)  # flushes the spans still batched

    app = FastAPI(
        title="Billing sagas",
        version="1",
        summary="Meter usage, bill four tiers, charge, dun and refund on Temporal.",
        lifespan=lifespan,
        dependencies=[Depends(bind_request_ids)],  # ids of the path into every log line
    )
    install_error_handlers(app)
    tracing = install_observability(app, settings)
    for module in (health, customers, usage, bills, billing, workflows, webhooks, reports):
        app.include_router(module.router)
    app.include_router(reconciliations.router)
    app.include_router(webhook_endpoints.router)
    app.include_router(events.router)
    return app
