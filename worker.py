"""Runs the Temporal worker: every workflow and activity of the billing sagas."""

from __future__ import annotations

import asyncio
import logging

import asyncpg
from temporalio.client import Client
from temporalio.worker import Worker

from activities.collect import CollectActivities
from activities.config import ConfigActivities
from activities.customers import CustomerActivities
from activities.gateway import GatewayActivities
from activities.ledger import LedgerActivities
from activities.outbox import OutboxActivities
from activities.reconciliation import ReconciliationActivities
from activities.refunds import RefundActivities
from activities.subscriptions import SubscriptionActivities
from activities.webhook_delivery import WebhookDeliveryActivities
from billing.catalog import DEFAULT_CATALOG
from billing.outbound import attempt_queue
from billing.payments import PaymentGateway
from config.settings import Settings
from observability.codec import data_converter
from observability.interceptors import LogContextInterceptor
from observability.logs import configure_logging
from observability.tracing import client_interceptors, tracer_provider
from observability.worker_metrics import sdk_runtime, serve_worker_metrics
from payments.simulator import SimulatorGateway
from store.db import create_pool
from workflows.billing_cycle import BillingCycleWorkflow
from workflows.billing_run import BillingRunWorkflow
from workflows.charge import ChargeWorkflow
from workflows.payment_received import PaymentReceivedWorkflow
from workflows.reconciliation import ReconciliationWorkflow
from workflows.refund import RefundWorkflow
from workflows.subscription import SubscriptionWorkflow
from workflows.upgrade import UpgradeWorkflow
from workflows.webhook_delivery import WebhookDeliveryWorkflow
from workflows.webhook_dispatch import WebhookDispatchWorkflow, ensure_dispatcher

log = logging.getLogger("worker")

WORKFLOWS = [
    BillingCycleWorkflow,
    BillingRunWorkflow,
    ChargeWorkflow,
    PaymentReceivedWorkflow,
    ReconciliationWorkflow,
    RefundWorkflow,
    SubscriptionWorkflow,
    UpgradeWorkflow,
    WebhookDeliveryWorkflow,
    WebhookDispatchWorkflow,
]


def build_worker(
    client: Client,
    settings: Settings,
    pool: asyncpg.Pool,
    gateway: PaymentGateway,
    *,
    task_queue: str | None = None,
) -> Worker:
    """The worker with every saga; tests build it with their own task queue."""
    ledger = LedgerActivities(pool, DEFAULT_CATALOG)
    customers = CustomerActivities(pool)
    # A claim's lease: the charge activity's retry budget and one more call's timeout.
    lease = settings.gateway_retry_budget_delta + settings.gateway_timeout_delta
    payments = GatewayActivities(pool, gateway, claim_lease=lease)
    config = ConfigActivities(settings)
    refunds = RefundActivities(pool)
    turns = SubscriptionActivities(client, task_queue or settings.task_queue)
    reconciliation = ReconciliationActivities(pool, gateway)
    outbox = OutboxActivities(pool, client, task_queue or settings.task_queue, settings)
    collect = CollectActivities(ledger, payments, settings)
    return Worker(
        client,
        task_queue=task_queue or settings.task_queue,
        workflows=WORKFLOWS,
        activities=[
            config.charge_policy,
            collect.open_cycle,
            collect.charge_and_record,
            customers.get_customer,
            customers.change_tier,
            customers.dunning_exhausted,
            customers.list_billable_customers,
            customers.tier_to_restore,
            turns.request_turn,
            turns.is_running,
            ledger.issue_cycle_bill,
            ledger.issue_upgrade_bill,
            ledger.void_bill,
            ledger.get_bill,
            ledger.record_attempt,
            ledger.record_payment,
            ledger.write_off,
            refunds.reserve_refund,
            refunds.complete_refund,
            refunds.release_refund,
            ledger.record_saga_note,
            payments.charge,
            payments.get_charge,
            payments.resolve_charge,
            payments.refund,
            payments.resolve_refund,
            reconciliation.list_transactions,
            reconciliation.plan_page,
            reconciliation.record_refunds,
            reconciliation.begin_report,
            reconciliation.save_report,
            outbox.dispatch_events,
            outbox.endpoint_exhausted,
        ],
        max_cached_workflows=settings.worker_workflow_cache,
        max_concurrent_activities=100,
        interceptors=[LogContextInterceptor()],
    )


def build_webhook_worker(
    client: Client, settings: Settings, pool: asyncpg.Pool, *, task_queue: str | None = None
) -> Worker:
    """The HTTP attempts of outbound webhooks, on their own queue and slots: a slow or dead
    receiver holds none of the sagas' (docs/webhooks.md)."""
    deliveries = WebhookDeliveryActivities(pool, settings)
    return Worker(
        client,
        task_queue=attempt_queue(task_queue or settings.task_queue),
        activities=[deliveries.attempt_delivery],
        # Attempts are awaits on sockets, not threads: many may wait on slow receivers.
        max_concurrent_activities=500,
        interceptors=[LogContextInterceptor()],
    )


async def main(settings: Settings) -> None:
    """Every client and worker of this process takes `data_converter(settings)`: pydantic
    payloads, encrypted with the settings' key."""
    configure_logging(settings, "worker")
    tracing = tracer_provider(settings, "worker")
    client = await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=data_converter(settings),
        interceptors=client_interceptors(tracing),
        runtime=sdk_runtime(settings),
    )
    metrics = serve_worker_metrics(settings)
    pool = await create_pool(settings.database_url, min_size=2, max_size=20)
    gateway = SimulatorGateway(
        settings.gateway_url, timeout_s=settings.gateway_timeout_delta.total_seconds()
    )
    worker = build_worker(client, settings, pool, gateway)
    webhooks = build_webhook_worker(client, settings, pool)
    await ensure_dispatcher(client, settings.task_queue)
    log.info("worker polling task queue %s", settings.task_queue)
    try:
        async with webhooks:
            await worker.run()
    finally:
        await gateway.aclose()
        await pool.close()
        if metrics is not None:
            metrics.shutdown()
        if tracing is not None:
            tracing.shutdown()


if __name__ == "__main__":
    asyncio.run(main(Settings()))  # the process's one Settings, passed down
