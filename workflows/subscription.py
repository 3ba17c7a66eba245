"""SubscriptionWorkflow: a customer's tier changes, one at a time, in arrival order.

One per customer (`subscription-{customer}`), opened by the first tier change that asks
for its turn (signal-with-start) and closed after a while with nobody waiting. Each
change (conversion, manual up- or downgrade, dunning's downgrade, a restore) is its own
UpgradeWorkflow that asks for the turn, waits for `turn_granted`, and gives it back with
`release` when done, compensated or not. Why a workflow rather than a Postgres lock:
docs/workflows.md ("One tier change at a time").
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.subscriptions import SubscriptionActivities
    from activities.subscriptions_messages import SubscriptionInput, TurnRequest
    from workflows.options import DB
    from workflows.status import SagaStatus

# A holder that never gives the turn back (terminated by hand) must not block the rest.
_HOLDER_CHECK = timedelta(minutes=10)


@workflow.defn
class SubscriptionWorkflow:
    def __init__(self) -> None:
        self._waiting: list[str] = []
        self._holder: str | None = None

    @workflow.signal
    def request_turn(self, request: TurnRequest) -> None:
        """Queue a change; the same workflow asking twice keeps its first place."""
        if request.workflow_id != self._holder and request.workflow_id not in self._waiting:
            self._waiting.append(request.workflow_id)

    @workflow.signal
    def release(self, request: TurnRequest) -> None:
        if self._holder == request.workflow_id:
            self._holder = None
        elif request.workflow_id in self._waiting:
            self._waiting.remove(request.workflow_id)  # gave up before its turn

    @workflow.query
    def status(self) -> SagaStatus:
        holder = self._holder or "nobody"
        return SagaStatus(
            step="changing" if self._holder else "idle",
            details=f"{holder} has the turn; {len(self._waiting)} waiting",
        )

    async def _until_released(self, customer_id: str) -> None:
        while self._holder is not None:
            try:
                await workflow.wait_condition(lambda: self._holder is None, timeout=_HOLDER_CHECK)
            except TimeoutError:
                holder = TurnRequest(customer_id=customer_id, workflow_id=self._holder)
                running = await workflow.execute_activity_method(
                    SubscriptionActivities.is_running, holder, **DB
                )
                if not running:
                    workflow.logger.warning("%s ended without giving the turn back", holder)
                    self._holder = None

    @workflow.run
    async def run(self, inp: SubscriptionInput) -> None:
        self._waiting = [*inp.waiting, *self._waiting]
        while True:
            try:
                await workflow.wait_condition(lambda: bool(self._waiting), timeout=inp.idle)
            except TimeoutError:
                return  # a signal arriving now reopens it (signal-with-start): none is lost
            self._holder = self._waiting.pop(0)
            workflow.set_current_details(f"{self._holder} is changing the tier")
            try:
                await workflow.get_external_workflow_handle(self._holder).signal(
                    "turn_granted", TurnRequest(customer_id=inp.customer_id, workflow_id="")
                )
            except Exception:
                workflow.logger.warning("%s is gone; next in line", self._holder)
                self._holder = None
                continue
            await self._until_released(inp.customer_id)
            workflow.set_current_details(f"{len(self._waiting)} waiting")
            if workflow.info().is_continue_as_new_suggested():
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(
                    SubscriptionInput(
                        customer_id=inp.customer_id, waiting=self._waiting, idle=inp.idle
                    )
                )
