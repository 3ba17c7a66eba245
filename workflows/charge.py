"""ChargeWorkflow: collect one bill, with dunning on durable timers.

Tries the customer's newest usable payment method; a soft decline or a gateway that
stays away is retried on the dunning schedule (default after 1, 3 and 7 days), a hard
decline is never retried with the same method. `retry_now` (pay-now, a new payment
method) tries at once without losing the schedule. When dunning is exhausted the bill is
written off (uncollectible) and the customer downgraded or suspended, per settings.

Unknown is not failed: an attempt whose answer never came keeps the bill's claim and is
looked up by its key until the gateway says what happened; a bank transfer past its
deadline stays open and is looked up until it settles. Only a definite failure counts.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.config import ConfigActivities
    from activities.config_messages import ChargePolicy
    from activities.customers import CustomerActivities
    from activities.customers_messages import DunningExhaustedInput
    from activities.gateway_messages import Settlement
    from activities.ledger import LedgerActivities
    from activities.ledger_messages import BillKey, BillRef, WriteOffInput
    from billing.ledger import BillStatus
    from workflows.charge_messages import ChargeInput, ChargeResult, RetryNow
    from workflows.collecting import Collection
    from workflows.follow_ups import dunning_downgrade
    from workflows.options import DB
    from workflows.status import SagaWorkflow


# A change made while sagas were running: read the bill before anything else, so that
# the Web UI says what is being collected and a bill paid or voided meanwhile is left
# alone. Sagas started before it replay without it (see docs/workflows.md).
READ_BILL_FIRST = "read-bill-first"
SERIALIZED_DOWNGRADE = "dunning-downgrade-through-the-subscription"  # issue 12
# Issue 15: the bill and the policy are short reads, so local activities (no task queue
# round trip, no activity task events). The attempt/settle patches live in collecting.py.
LOCAL_READS = "short-reads-as-local-activities"


@workflow.defn
class ChargeWorkflow(SagaWorkflow):
    def __init__(self) -> None:
        super().__init__()
        self._retry_requested = False
        self._requests: set[str] = set()
        self._bill = Collection(self._bill_step)

    @workflow.signal
    def retry_now(self, request: RetryNow) -> None:
        """Pay now, or a new payment method: try at once; the same request id twice is one."""
        if request.request_id is not None:
            if request.request_id in self._requests:
                return
            self._requests.add(request.request_id)
        self._retry_requested = True

    @workflow.signal
    def settle(self, settlement: Settlement) -> None:
        """A bank transfer's outcome, from the gateway webhook."""
        self._bill.settlements[settlement.gateway_reference] = settlement

    @workflow.query
    def requests(self) -> list[str]:
        """The pay-now request ids this saga took, so the API can answer a repeat."""
        return sorted(self._requests)

    def _bill_step(self, step: str, details: str) -> None:
        self._step(step, details, self._bill.bill_id or None)

    @workflow.run
    async def run(self, inp: ChargeInput) -> ChargeResult:
        self._begin(inp)
        # A billing cycle that hands its bill over has just issued it: no need to read it.
        if inp.handoff is None and workflow.patched(READ_BILL_FIRST):
            done = await self._read_bill_first(inp)
            if done is not None:
                return done
        return await self._collect(inp)

    def _begin(self, inp: ChargeInput) -> None:
        attempts = inp.handoff.attempts if inp.handoff else 0
        self._bill.start(inp.bill_id, inp.customer_id, workflow.info().workflow_id, attempts)

    async def _read_bill_first(self, inp: ChargeInput) -> ChargeResult | None:
        key = BillKey(bill_id=inp.bill_id)
        bill: BillRef
        if workflow.patched(LOCAL_READS):
            bill = await workflow.execute_local_activity_method(
                LedgerActivities.get_bill, key, **DB
            )
        else:
            bill = await workflow.execute_activity_method(LedgerActivities.get_bill, key, **DB)
        if bill.status in (BillStatus.PAID, BillStatus.VOID):
            self._bill_step("not_due", f"bill {inp.bill_id} is {bill.status}")
            return ChargeResult(bill_id=inp.bill_id, outcome="not_due", attempts=0)
        self._bill_step("collecting", f"collecting {bill.amount_due} {bill.currency}")
        return None

    async def _policy(self, inp: ChargeInput) -> ChargePolicy:
        if inp.handoff is not None:
            return inp.handoff.policy
        if workflow.patched(LOCAL_READS):
            return await workflow.execute_local_activity_method(
                ConfigActivities.charge_policy, **DB
            )
        return await workflow.execute_activity_method(ConfigActivities.charge_policy, **DB)

    async def _collect(self, inp: ChargeInput) -> ChargeResult:
        policy = await self._policy(inp)
        delays = policy.dunning_delays if inp.dunning else []
        # What the cycle's own attempt came to: this saga goes on from there.
        first = inp.handoff.first if inp.handoff else None
        for slot in range(len(delays) + 1):
            final = None
            if slot > 0:
                final = await self._wait_for_next_try(policy, delays[slot - 1])
            if final is None:
                later = delays[slot] if slot < len(delays) else None
                self._bill.next_try = workflow.now() + later if later is not None else None
                if first is not None and inp.handoff is not None:
                    final = await self._bill.take(policy, first, inp.handoff.bill)
                    first = None
                else:
                    final = await self._bill.attempt(policy)
            if final is not None:
                return final
        if not inp.dunning:
            self._bill_step("failed", "the charge failed; the caller compensates")
            return self._bill.result("failed")
        return await self._exhausted(inp, policy)

    async def _wait_for_next_try(
        self, policy: ChargePolicy, delay: timedelta
    ) -> ChargeResult | None:
        """Sleep until the next dunning slot; each retry_now on the way is an extra try."""
        deadline = workflow.now() + delay
        self._bill.next_try = deadline
        while (remaining := deadline - workflow.now()) > timedelta(0):
            if self._bill.awaiting_method:
                self._bill_step(
                    "awaiting_payment_method",
                    f"no usable payment method; waiting for one until {deadline:%Y-%m-%d %H:%M}",
                )
            else:
                when = f"{deadline:%Y-%m-%d %H:%M} UTC"
                self._bill_step("dunning", f"payment failed; next try at {when}")
            try:
                await workflow.wait_condition(lambda: self._retry_requested, timeout=remaining)
            except TimeoutError:
                break
            self._retry_requested = False
            final = await self._bill.attempt(policy)
            if final is not None:
                return final
        return None

    async def _exhausted(self, inp: ChargeInput, policy: ChargePolicy) -> ChargeResult:
        attempts = self._bill.attempts
        await workflow.execute_activity_method(
            LedgerActivities.write_off,
            WriteOffInput(
                bill_id=inp.bill_id, reason=f"dunning exhausted after {attempts} attempts"
            ),
            **DB,
        )
        action = policy.dunning_exhausted_action
        if action == "downgrade" and workflow.patched(SERIALIZED_DOWNGRADE):
            await dunning_downgrade(inp.customer_id, inp.bill_id)
        else:
            await workflow.execute_activity_method(
                CustomerActivities.dunning_exhausted,
                DunningExhaustedInput(
                    customer_id=inp.customer_id,
                    bill_id=inp.bill_id,
                    workflow_id=workflow.info().workflow_id,
                    action=action,
                    at=workflow.now(),
                ),
                **DB,
            )
        self._bill_step(
            "uncollectible", f"dunning exhausted after {attempts} attempts; customer {action}d"
        )
        return ChargeResult(bill_id=inp.bill_id, outcome="uncollectible", attempts=attempts)
