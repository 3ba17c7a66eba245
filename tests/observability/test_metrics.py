"""After a journey, /metrics on the API and on the worker show it: exact counter deltas.

The worker here runs in the test's process, so the service counters its activities bump
live in the same registry the API serves; the Temporal SDK's own series come from a
Runtime with Prometheus bound to a free port, as `worker.main` builds it.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal

import httpx
import pytest
from temporalio.client import Client, WorkflowFailureError

from devstack.services import free_port
from observability.worker_metrics import sdk_runtime, serve_worker_metrics
from tests.converter import DATA_CONVERTER
from tests.integration.harness import LiveStack, live_stack
from workflows.refund import RefundWorkflow
from workflows.refund_messages import RefundInput

from .journey import bill_period, customer, refund, usage
from .prom import Series, delta, parse, value


@pytest.fixture(scope="module")
def metrics_settings(settings):
    """Free ports for the worker's /metrics and the SDK's Prometheus exporter."""
    return settings.model_copy(
        update={"worker_metrics_port": free_port(), "temporal_sdk_metrics_port": free_port()}
    )


@pytest.fixture(scope="module")
async def sdk_client(metrics_settings, temporal_address) -> Client:
    """A client on a runtime whose Prometheus exporter a worker built on it reports to."""
    return await Client.connect(
        temporal_address,
        namespace=metrics_settings.temporal_namespace,
        data_converter=DATA_CONVERTER,
        runtime=sdk_runtime(metrics_settings),
    )


@pytest.fixture
async def live(metrics_settings, db_pool, sdk_client, tmp_path) -> AsyncIterator[LiveStack]:
    async with live_stack(
        metrics_settings, db_pool, sdk_client, tmp_path, dunning_schedule="300ms,300ms,300ms"
    ) as stack:
        yield stack


async def scrape(live: LiveStack) -> Series:
    response = await live.api.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return parse(response.text)


async def test_a_journey_shows_in_the_api_metrics(live: LiveStack, sdk_client: Client):
    before = await scrape(live)
    ada = await customer(live, tier="starter", token="tok_success")
    bob = await customer(live, tier="free")  # no card: cannot convert, so it is limited
    cat = await customer(live, tier="starter", token="tok_card_declined")

    e1 = f"e-{uuid.uuid4().hex[:8]}"
    assert await usage(live, ada["id"], "api_call", 5, e1) == 201
    assert await usage(live, ada["id"], "api_call", 5, e1) == 200  # duplicate
    batch = {
        "events": [
            {"event_id": "b1", "customer_id": ada["id"], "kind": "llm_tokens", "quantity": 1000},
            {"event_id": "b1", "customer_id": ada["id"], "kind": "llm_tokens", "quantity": 1000},
            {"event_id": "b2", "customer_id": "cus_nobody", "kind": "api_call", "quantity": 1},
        ]
    }
    answer = (await live.api.post("/v1/usage/batch", json=batch, headers=live.auth)).json()
    assert (answer["accepted"], answer["duplicates"], len(answer["rejected"])) == (1, 1, 1)
    assert await usage(live, bob["id"], "api_call", 1000, "f1") == 201
    assert await usage(live, bob["id"], "api_call", 1, "f2") == 429

    paid = await bill_period(live, sdk_client, ada["id"])
    assert (paid["status"], paid["total"]) == ("paid", "10.00")
    await refund(live, sdk_client, paid["id"], "4.00", "goodwill")
    with pytest.raises(WorkflowFailureError):  # past the API's early check: the saga refuses
        await sdk_client.execute_workflow(
            RefundWorkflow.run,
            RefundInput(bill_id=paid["id"], amount=Decimal("7.00"), reason="x", request_id="r2"),
            id=f"refund-{paid['id']}-r2",
            task_queue=live.settings.task_queue,
        )
    lost = await bill_period(live, sdk_client, cat["id"])
    assert lost["status"] == "uncollectible"

    after = await scrape(live)

    def d(name: str, **labels: str) -> float:
        return delta(before, after, name, **labels)

    usage_events = "billing_usage_events_total"
    assert d(usage_events, outcome="accepted") == 3
    assert d(usage_events, outcome="duplicate") == 2
    assert d(usage_events, outcome="refused", reason="rate_limited") == 1
    assert d(usage_events, outcome="refused", reason="unknown_customer") == 1
    assert d(usage_events, outcome="refused") == 2
    decisions = "billing_rate_limit_decisions_total"
    # The duplicate is checked by the limiter too (it is found a duplicate on insert).
    assert d(decisions, decision="allowed", tier="starter") == 2
    assert d(decisions, decision="allowed", tier="free") == 1
    assert d(decisions, decision="limited", tier="free") == 1
    assert d(decisions, decision="limited") == 1

    charges = "billing_charges_total"
    assert d(charges, outcome="succeeded", method="credit_card") == 1
    assert d(charges, outcome="failed", method="credit_card") == 1  # the hard decline
    # The declined card is excluded and no other method is on file: dunning waits for one
    # and counts no attempt, since none reached the gateway (issue 12: attempts are calls).
    assert d(charges, outcome="no_method") == 0
    assert d(charges) == 2
    assert d("billing_dunning_attempts_total") == 0
    assert d("billing_dunning_exhausted_total", action="downgrade") == 1
    assert d("billing_refunds_total", outcome="succeeded") == 1
    assert d("billing_refunds_total", outcome="refused") == 1
    assert d("billing_refunds_total", outcome="released") == 0
    collected = "billing_revenue_collected_minor_units_total"
    assert d(collected, currency="USD", method="credit_card", tier="starter") == 1000
    assert d(collected) == 1000
    assert d("billing_revenue_refunded_minor_units_total", currency="USD") == 400

    timing = "billing_http_request_duration_seconds_count"
    assert d(timing, method="POST", route="/v1/usage", status="201") == 2
    assert d(timing, method="POST", route="/v1/usage", status="200") == 1
    assert d(timing, method="POST", route="/v1/usage", status="429") == 1
    assert d(timing, method="POST", route="/v1/usage/batch", status="200") == 1
    assert d(timing, route="/v1/bills/{bill_id}/refunds", status="202") == 1
    # Ids never become labels: one series per route template, not per customer.
    assert not any(ada["id"] in dict(labels).get("route", "") for _, labels in after)


async def worker_metrics(url: str, task_queue: str, workflow_type: str) -> Series:
    """Scrape until the SDK has exported the finished workflows (it batches briefly)."""
    async with httpx.AsyncClient() as http:
        for _ in range(50):
            series = parse((await http.get(url)).text)
            done = value(
                series, "temporal_workflow_completed_total",
                task_queue=task_queue, workflow_type=workflow_type,
            )  # fmt: skip
            if done:
                return series
            await asyncio.sleep(0.1)
    return series


async def test_the_worker_metrics_hold_the_sdk_runtime_and_the_service_series(
    live: LiveStack, sdk_client: Client, metrics_settings
):
    ada = await customer(live, tier="starter", token="tok_success")
    await bill_period(live, sdk_client, ada["id"])
    server = serve_worker_metrics(metrics_settings)
    assert server is not None
    try:
        url = f"http://127.0.0.1:{metrics_settings.worker_metrics_port}/metrics"
        queue = live.settings.task_queue
        series = await worker_metrics(url, queue, "BillingCycleWorkflow")
        async with httpx.AsyncClient() as http:
            assert (await http.get(url.replace("/metrics", "/nope"))).status_code == 404
    finally:
        server.shutdown()
        server.server_close()
    # The Temporal SDK's own runtime telemetry, for this test's task queue only.
    # Paid at once: one execution, the cycle, which charged the bill itself (issue 15).
    done = value(
        series, "temporal_workflow_completed_total",
        task_queue=queue, workflow_type="BillingCycleWorkflow",
    )  # fmt: skip
    assert done == 1
    assert value(series, "temporal_workflow_completed_total", task_queue=queue,
                 workflow_type="ChargeWorkflow") == 0  # fmt: skip
    assert value(series, "temporal_activity_execution_latency_count",
                 activity_type="charge_and_record", task_queue=queue) == 1  # fmt: skip
    assert value(series, "temporal_worker_task_slots_available", task_queue=queue) > 0
    # And the service's counters, from the same endpoint.
    assert value(series, "billing_charges_total", outcome="succeeded") >= 1
    assert value(series, "billing_revenue_collected_minor_units_total") >= 1000
