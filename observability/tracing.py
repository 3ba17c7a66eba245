"""OpenTelemetry traces: off by default; `TRACING_ENABLED=true` sends them over OTLP/HTTP.

One trace follows a request from the API route through `StartWorkflow` into the worker's
`RunWorkflow` and `RunActivity` spans: Temporal's `TracingInterceptor` carries the span
context in workflow headers. Providers are explicit, never the process-global one, so
an API and a worker in one process (as in the tests) keep their own service names.
"""

from __future__ import annotations

from fastapi import FastAPI
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from temporalio.client import Interceptor
from temporalio.contrib.opentelemetry import TracingInterceptor

from config.settings import Settings

# Probes and scrapes every few seconds would drown the traces that matter.
_UNTRACED_URLS = "healthz,metrics"


def tracer_provider(settings: Settings, service: str) -> TracerProvider | None:
    """A provider exporting to OTLP_TRACES_ENDPOINT, or None while tracing is off."""
    if not settings.tracing_enabled:
        return None
    provider = TracerProvider(resource=Resource.create({"service.name": f"billing-{service}"}))
    exporter = OTLPSpanExporter(endpoint=settings.otlp_traces_endpoint)
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def client_interceptors(provider: TracerProvider | None) -> list[Interceptor]:
    """For `Client.connect`: a worker built on that client traces its workflows too."""
    if provider is None:
        return []
    return [TracingInterceptor(provider.get_tracer("billing.temporal"))]


def instrument_api(app: FastAPI, provider: TracerProvider | None) -> None:
    if provider is not None:
        FastAPIInstrumentor.instrument_app(
            app, tracer_provider=provider, excluded_urls=_UNTRACED_URLS
        )
