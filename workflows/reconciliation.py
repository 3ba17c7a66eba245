"""ReconciliationWorkflow: every charge and refund the gateway holds since `since`, in the ledger.

Pages through the gateway's transactions oldest first. Per page: one activity loads the
ledger's side and judges each transaction; a capture the ledger lacks is recorded by a
PaymentReceivedWorkflow child (which also refunds any excess), a refund by one activity;
what cannot be tied to a bill is listed as unresolved. The report is saved in Postgres at
the start, after every page and at the end. Long listings continue as new with their cursor.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ChildWorkflowError, WorkflowAlreadyStartedError

with workflow.unsafe.imports_passed_through():
    from activities.ledger_messages import PaymentReceivedInput
    from activities.reconciliation import ReconciliationActivities
    from billing.payments import GatewayTransaction
    from billing.reconciliation import (
        CaptureToRecord,
        Fixed,
        ListTransactionsInput,
        PlanPageInput,
        ReconciliationInput,
        ReconciliationProgress,
        ReconciliationResult,
        RecordRefundsInput,
        ReportSave,
        Unresolved,
        default_since,
        report_id,
    )
    from billing.workflow_ids import payment_received_id
    from workflows.options import DB, NON_RETRYABLE_ERROR_TYPES, ActivityOptions
    from workflows.payment_received import PaymentReceivedWorkflow
    from workflows.search_attributes import search_attributes
    from workflows.status import SagaWorkflow

# Reading the gateway moves no money, so it may retry for as long as a daily run can wait.
GATEWAY_READ: ActivityOptions = {
    "start_to_close_timeout": timedelta(seconds=30),
    "schedule_to_close_timeout": timedelta(hours=2),
    "retry_policy": RetryPolicy(
        initial_interval=timedelta(seconds=1),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(minutes=1),
        non_retryable_error_types=NON_RETRYABLE_ERROR_TYPES,
    ),
}
PAGE_SIZE = 100
RECORDINGS_IN_FLIGHT = 10
# Pages per run before continuing as new: keeps each history well under its limits.
PAGES_PER_RUN = 20


@workflow.defn
class ReconciliationWorkflow(SagaWorkflow):
    def __init__(self) -> None:
        super().__init__()
        self._gate = asyncio.Semaphore(RECORDINGS_IN_FLIGHT)

    def _progress(self, step: str, progress: ReconciliationProgress) -> None:
        details = (
            f"{progress.checked} checked, {progress.matched} matched, "
            f"{len(progress.fixed)} fixed, {len(progress.unresolved)} unresolved"
        )
        self._step(step, details)

    @workflow.run
    async def run(self, inp: ReconciliationInput) -> ReconciliationResult:
        wf = workflow.info().workflow_id
        since = inp.since or default_since(workflow.now())
        # A scheduled run has no request id: its workflow id (made unique per run) serves.
        request_id = inp.request_id or wf.removeprefix("reconciliation-")
        report = ReportSave(id=report_id(request_id), workflow_id=wf, since=since, status="running")
        progress = inp.progress or ReconciliationProgress()
        if inp.progress is None:
            await workflow.execute_activity_method(
                ReconciliationActivities.begin_report, report, **DB
            )
        pages = 0
        while True:
            self._progress("reconciling", progress)
            page = await workflow.execute_activity_method(
                ReconciliationActivities.list_transactions,
                ListTransactionsInput(since=since, cursor=progress.cursor, limit=PAGE_SIZE),
                **GATEWAY_READ,
            )
            if page.transactions:
                progress = await self._reconcile(page.transactions, progress, wf)
            progress = progress.model_copy(update={"cursor": page.next_cursor})
            done = page.next_cursor is None
            saved = report.model_copy(
                update={
                    "status": "completed" if done else "running",
                    "checked": progress.checked,
                    "matched": progress.matched,
                    "fixed": progress.fixed,
                    "unresolved": progress.unresolved,
                }
            )
            await workflow.execute_activity_method(
                ReconciliationActivities.save_report, saved, **DB
            )
            if done:
                self._progress("done", progress)
                return ReconciliationResult(
                    id=report.id,
                    workflow_id=wf,
                    since=since,
                    checked=progress.checked,
                    matched=progress.matched,
                    fixed=progress.fixed,
                    unresolved=progress.unresolved,
                )
            pages += 1
            if pages >= PAGES_PER_RUN or workflow.info().is_continue_as_new_suggested():
                workflow.continue_as_new(
                    ReconciliationInput(since=since, request_id=request_id, progress=progress)
                )

    async def _reconcile(
        self, transactions: list[GatewayTransaction], progress: ReconciliationProgress, wf: str
    ) -> ReconciliationProgress:
        """One page: judge it, record what the ledger lacks, add it all to the progress."""
        plan = await workflow.execute_activity_method(
            ReconciliationActivities.plan_page,
            PlanPageInput(transactions=transactions),
            **DB,
        )
        matched = progress.matched + plan.matched
        fixed = list(progress.fixed)
        unresolved = [*progress.unresolved, *plan.unresolved]
        # Captures first: a refund of one found on this page is tied through its entry.
        for outcome in await asyncio.gather(*(self._capture(c) for c in plan.captures)):
            if outcome is None:
                matched += 1
            elif isinstance(outcome, Fixed):
                fixed.append(outcome)
            else:
                unresolved.append(outcome)
        if plan.refunds:
            recorded = await workflow.execute_activity_method(
                ReconciliationActivities.record_refunds,
                RecordRefundsInput(refunds=plan.refunds, workflow_id=wf),
                **DB,
            )
            matched += recorded.matched
            fixed += recorded.fixed
            unresolved += recorded.unresolved
        return progress.model_copy(
            update={
                "checked": progress.checked + plan.checked,
                "matched": matched,
                "fixed": fixed,
                "unresolved": unresolved,
            }
        )

    async def _capture(self, capture: CaptureToRecord) -> Fixed | Unresolved | None:
        """Record one found capture through PaymentReceivedWorkflow; None: it was there."""
        fixed = Fixed(
            kind="capture",
            gateway_reference=capture.gateway_reference,
            bill_id=capture.bill_id,
            amount=capture.amount,
            currency=capture.currency,
        )
        async with self._gate:
            try:
                child = await workflow.start_child_workflow(
                    PaymentReceivedWorkflow.run,
                    PaymentReceivedInput(
                        bill_id=capture.bill_id,
                        gateway_reference=capture.gateway_reference,
                        amount=capture.amount,
                        currency=capture.currency,
                        method=capture.method,
                        authorization_code=capture.authorization_code,
                        source="reconciliation",
                    ),
                    id=payment_received_id(capture.gateway_reference),
                    # A recording that failed may be tried again; a running or done one not.
                    id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
                    # Money being recorded is never abandoned halfway with its parent.
                    parent_close_policy=workflow.ParentClosePolicy.ABANDON,
                    search_attributes=search_attributes(bill_id=capture.bill_id),
                    static_summary=(
                        f"Record {capture.gateway_reference} ({capture.amount} "
                        f"{capture.currency}) found by reconciliation on {capture.bill_id}"
                    ),
                )
            except WorkflowAlreadyStartedError:
                # A webhook (or an earlier run) is recording it now, or just has.
                return fixed.model_copy(update={"outcome": "recording"})
            try:
                result = await child
            except ChildWorkflowError as err:
                workflow.logger.warning(
                    "reconciliation: recording %s failed: %s",
                    capture.gateway_reference,
                    err.cause or err,
                )
                return Unresolved(
                    kind="charge",
                    gateway_reference=capture.gateway_reference,
                    amount=capture.amount,
                    currency=capture.currency,
                    bill_id=capture.bill_id,
                    reason=f"recording it failed: {err.cause or err}",
                )
        if not result.recorded:
            return None
        return fixed.model_copy(update={"excess_refunded": result.excess_refunded})
