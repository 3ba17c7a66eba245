"""Everything the API needs to be observable, installed by `create_app` in one call."""

from __future__ import annotations

from fastapi import FastAPI
from opentelemetry.sdk.trace import TracerProvider

from config.settings import Settings
from observability.codec_server import install_codec_server
from observability.http import MetricsMiddleware, metrics_router
from observability.logs import configure_logging
from observability.tracing import instrument_api, tracer_provider


def install_observability(app: FastAPI, settings: Settings) -> TracerProvider | None:
    """JSON logs, /metrics, request timing, the codec server, and traces when enabled.

    Returns the tracer provider (None while tracing is off) for the Temporal client's
    interceptors and for a flush at shutdown.
    """
    configure_logging(settings, "api")
    app.include_router(metrics_router(settings))
    install_codec_server(app, settings)
    app.add_middleware(MetricsMiddleware)
    provider = tracer_provider(settings, "api")
    instrument_api(app, provider)
    return provider
