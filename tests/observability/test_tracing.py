"""Tracing: off by default; when on, one trace runs from the API route into the worker.

Spans leave over real OTLP/HTTP to a collector stub served here, which decodes the
protobuf export requests as an OpenTelemetry collector would.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from fastapi import FastAPI, Request, Response
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from temporalio.client import Client

from api.app import create_app
from config.settings import Settings
from observability.tracing import client_interceptors, tracer_provider
from tests.converter import DATA_CONVERTER
from tests.integration.harness import live_stack, serve

from .journey import bill_period, customer


@dataclass(frozen=True)
class Span:
    service: str
    name: str
    trace_id: str


@dataclass
class Collector:
    url: str
    spans: list[Span]


@pytest.fixture
async def collector() -> AsyncIterator[Collector]:
    spans: list[Span] = []
    app = FastAPI()

    @app.post("/v1/traces")
    async def export(request: Request) -> Response:
        sent = ExportTraceServiceRequest.FromString(await request.body())
        for resource_spans in sent.resource_spans:
            attributes = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            for scope in resource_spans.scope_spans:
                spans.extend(
                    Span(attributes["service.name"], s.name, s.trace_id.hex()) for s in scope.spans
                )
        answer = ExportTraceServiceResponse().SerializeToString()
        return Response(answer, media_type="application/x-protobuf")

    async with serve(app) as url:
        yield Collector(url, spans)


def test_tracing_is_off_by_default():
    settings = Settings()
    assert settings.tracing_enabled is False
    assert tracer_provider(settings, "api") is None
    assert client_interceptors(None) == []
    app = create_app(settings)
    assert not any("OpenTelemetry" in getattr(m.cls, "__name__", "") for m in app.user_middleware)


async def test_one_trace_runs_from_the_api_into_the_worker(
    settings, db_pool, temporal_address, tmp_path, collector: Collector
):
    traced = settings.model_copy(
        update={"tracing_enabled": True, "otlp_traces_endpoint": f"{collector.url}/v1/traces"}
    )
    worker_tracing = tracer_provider(traced, "worker")
    assert worker_tracing is not None
    client = await Client.connect(
        temporal_address,
        data_converter=DATA_CONVERTER,
        interceptors=client_interceptors(worker_tracing),
    )
    async with live_stack(traced, db_pool, client, tmp_path) as live:
        ada = await customer(live, tier="starter", token="tok_success")
        bill = await bill_period(live, client, ada["id"])
        assert bill["status"] == "paid"
    # The API flushed its spans at shutdown; the worker's provider flushes here.
    await asyncio.to_thread(worker_tracing.shutdown)

    route = "POST /v1/customers/{customer_id}/billing-cycles"
    [request] = [s for s in collector.spans if s.name == route]
    assert request.service == "billing-api"
    trace = {(s.service, s.name) for s in collector.spans if s.trace_id == request.trace_id}
    assert ("billing-api", "StartWorkflow:BillingCycleWorkflow") in trace
    assert {
        ("billing-worker", "RunWorkflow:BillingCycleWorkflow"),
        ("billing-worker", "RunActivity:open_cycle"),
        ("billing-worker", "RunActivity:charge_and_record"),
    } <= trace
    # Paid at once: the cycle charged the bill itself, with no charge saga (issue 15).
    assert not any("ChargeWorkflow" in name for _, name in trace)
    # Health probes and scrapes are not traced.
    assert not any("healthz" in s.name or "metrics" in s.name for s in collector.spans)
