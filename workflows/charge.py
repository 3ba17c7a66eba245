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

from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.config import ConfigActivities
    from activities.config_messages import ChargePolicy
    from activities.customers import CustomerActivities
    from activities.customers_messages import DunningExhaustedInput
    from activities.gateway import GatewayActivities
    from activities.gateway_messages import (
        AttemptChargeInput,
        AttemptOutcome,
        GatewayReference,
        ResolveChargeInput,
        Settlement,
    )
    from activities.ledger import LedgerActivities
    from activities.ledger_messages import BillKey, BillRef, RecordAttemptInput, WriteOffInput
    from billing.ledger import BillStatus
    from billing.payments import DeclineKind
    from workflows.charge_messages import ChargeInput, ChargeResult, RetryNow
    from workflows.follow_ups import after_payment, dunning_downgrade
    from workflows.options import DB, GATEWAY, LOOKUP, gateway_options
    from workflows.status import SagaWorkflow


# A change made while sagas were running: read the bill before anything else, so that
# the Web UI says what is being collected and a bill paid or voided meanwhile is left
# alone. Sagas started before it replay without it (see docs/workflows.md).
READ_BILL_FIRST = "read-bill-first"
# Issue 12, each at the point where the old code went another way:
RESOLVE_UNKNOWN = "resolve-unknown-outcomes"  # a lost answer is looked up, never failed
LOOK_UP_OVERDUE = "look-up-overdue-transfers"  # a late transfer stays open
AWAIT_METHOD = "await-payment-method"  # no usable method: wait, record no attempt
SERIALIZED_DOWNGRADE = "dunning-downgrade-through-the-subscription"


@workflow.defn
class ChargeWorkflow(SagaWorkflow):
    def __init__(self) -> None:
        super().__init__()
        self._retry_requested = False
        self._settlements: dict[str, Settlement] = {}
        self._attempts = 0
        self._requests: set[str] = set()
        self._awaiting_method = False
        self._next_try: datetime | None = None

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
        self._settlements[settlement.gateway_reference] = settlement

    @workflow.query
    def requests(self) -> list[str]:
        """The pay-now request ids this saga took, so the API can answer a repeat."""
        return sorted(self._requests)

    @workflow.run
    async def run(self, inp: ChargeInput) -> ChargeResult:
        if workflow.patched(READ_BILL_FIRST):
            done = await self._read_bill_first(inp)
            if done is not None:
                return done
        return await self._collect(inp)

    async def _read_bill_first(self, inp: ChargeInput) -> ChargeResult | None:
        bill = await workflow.execute_activity_method(
            LedgerActivities.get_bill, BillKey(bill_id=inp.bill_id), **DB
        )
        if bill.status in (BillStatus.PAID, BillStatus.VOID):
            self._step("not_due", f"bill {inp.bill_id} is {bill.status}", inp.bill_id)
            return ChargeResult(bill_id=inp.bill_id, outcome="not_due", attempts=0)
        self._step("collecting", f"collecting {bill.amount_due} {bill.currency}", inp.bill_id)
        return None

    async def _collect(self, inp: ChargeInput) -> ChargeResult:
        policy = await workflow.execute_activity_method(ConfigActivities.charge_policy, **DB)
        delays = policy.dunning_delays if inp.dunning else []
        excluded: list[str] = []
        for slot in range(len(delays) + 1):
            final = None
            if slot > 0:
                final = await self._wait_for_next_try(inp, policy, delays[slot - 1], excluded)
            if final is None:
                self._next_try = workflow.now() + delays[slot] if slot < len(delays) else None
                final = await self._attempt(inp, policy, excluded)
            if final is not None:
                return final
        if not inp.dunning:
            self._step("failed", "the charge failed; the caller compensates", inp.bill_id)
            return ChargeResult(bill_id=inp.bill_id, outcome="failed", attempts=self._attempts)
        return await self._exhausted(inp, policy)

    async def _wait_for_next_try(
        self, inp: ChargeInput, policy: ChargePolicy, delay: timedelta, excluded: list[str]
    ) -> ChargeResult | None:
        """Sleep until the next dunning slot; each retry_now on the way is an extra try."""
        deadline = workflow.now() + delay
        self._next_try = deadline
        while (remaining := deadline - workflow.now()) > timedelta(0):
            if self._awaiting_method:
                self._step(
                    "awaiting_payment_method",
                    f"no usable payment method; waiting for one until {deadline:%Y-%m-%d %H:%M}",
                    inp.bill_id,
                )
            else:
                when = f"{deadline:%Y-%m-%d %H:%M} UTC"
                self._step("dunning", f"payment failed; next try at {when}", inp.bill_id)
            try:
                await workflow.wait_condition(lambda: self._retry_requested, timeout=remaining)
            except TimeoutError:
                break
            self._retry_requested = False
            final = await self._attempt(inp, policy, excluded)
            if final is not None:
                return final
        return None

    async def _attempt(
        self, inp: ChargeInput, policy: ChargePolicy, excluded: list[str]
    ) -> ChargeResult | None:
        """One try; a ChargeResult when the saga is done, None to keep dunning."""
        self._attempts += 1
        n = self._attempts
        # Workflow id (unique per request) + attempt number: a retried activity reuses the
        # key, a new try does not.
        key = f"{workflow.info().workflow_id}-attempt-{n}"
        self._step("charging", f"charging bill {inp.bill_id}, attempt {n}", inp.bill_id)
        try:
            outcome = await workflow.execute_activity_method(
                GatewayActivities.charge,
                AttemptChargeInput(
                    bill_id=inp.bill_id,
                    idempotency_key=key,
                    excluded_payment_methods=excluded,
                    workflow_id=workflow.info().workflow_id,
                ),
                **gateway_options(policy.gateway_retry_budget),
            )
        except ActivityError as err:
            if workflow.patched(RESOLVE_UNKNOWN):
                outcome = await self._resolve(inp, key, "the gateway's answer was lost")
            else:  # histories from before: a gateway that stayed away was a failed attempt
                outcome = AttemptOutcome(
                    status="failed", idempotency_key=key, method="unknown", message=str(err.cause)
                )
        if outcome.status == "in_flight":
            # An earlier attempt's outcome is unknown: resolve it before anything else.
            self._attempts -= 1
            earlier = await self._resolve(inp, outcome.idempotency_key, "an earlier attempt")
            return await self._settle(inp, policy, earlier, excluded) or await self._attempt(
                inp, policy, excluded
            )
        if outcome.status == "not_due":
            self._step("not_due", f"bill {inp.bill_id} owes nothing", inp.bill_id)
            return ChargeResult(bill_id=inp.bill_id, outcome="not_due", attempts=n)
        if outcome.status == "no_method" and workflow.patched(AWAIT_METHOD):
            # No gateway call, so no attempt: wait for a method (or pay-now) instead.
            self._attempts -= 1
            self._awaiting_method = True
            self._step("awaiting_payment_method", "no usable payment method on file", inp.bill_id)
            return None
        self._awaiting_method = False
        return await self._settle(inp, policy, outcome, excluded)

    async def _resolve(self, inp: ChargeInput, key: str, why: str) -> AttemptOutcome:
        """Look the attempt up by its key until the gateway answers: unknown is not failed."""
        self._step("resolving", f"{why}; looking up {key} at the gateway", inp.bill_id)
        return await workflow.execute_activity_method(
            GatewayActivities.resolve_charge,
            ResolveChargeInput(bill_id=inp.bill_id, idempotency_key=key),
            **LOOKUP,
        )

    async def _settle(
        self, inp: ChargeInput, policy: ChargePolicy, outcome: AttemptOutcome, excluded: list[str]
    ) -> ChargeResult | None:
        """Record a definite outcome (waiting for a transfer first); done when paid."""
        if outcome.status == "pending" and outcome.gateway_reference:
            await self._record(inp, outcome)
            outcome = await self._await_settlement(inp, policy, outcome)
        bill = await self._record(inp, outcome)
        if bill.status == BillStatus.PAID:
            await after_payment(inp.customer_id, bill, outcome.gateway_reference or "")
            self._step("paid", f"bill {inp.bill_id} paid ({outcome.method})", inp.bill_id)
            return ChargeResult(bill_id=inp.bill_id, outcome="paid", attempts=self._attempts)
        if outcome.decline_kind == DeclineKind.HARD and outcome.payment_method_id:
            excluded.append(outcome.payment_method_id)
        return None

    async def _await_settlement(
        self, inp: ChargeInput, policy: ChargePolicy, pending: AttemptOutcome
    ) -> AttemptOutcome:
        ref = pending.gateway_reference
        assert ref is not None
        self._step("awaiting_settlement", f"bank transfer {ref} pending settlement", inp.bill_id)
        settlement: Settlement | None
        try:
            await workflow.wait_condition(
                lambda: ref in self._settlements, timeout=policy.bank_transfer_deadline
            )
            settlement = self._settlements[ref]
        except TimeoutError:
            if workflow.patched(LOOK_UP_OVERDUE):
                settlement = await self._look_up_until_settled(inp, policy, ref)
            else:  # histories from before: one look, then the transfer counted as failed
                settlement = await workflow.execute_activity_method(
                    GatewayActivities.get_charge, GatewayReference(gateway_reference=ref), **GATEWAY
                )
        if settlement is None:
            return pending.model_copy(
                update={"status": "failed", "message": "bank transfer not settled by the deadline"}
            )
        return pending.model_copy(
            update={
                "status": settlement.status,
                "authorization_code": settlement.authorization_code,
                "decline_code": settlement.decline_code,
                "message": settlement.message,
            }
        )

    async def _look_up_until_settled(
        self, inp: ChargeInput, policy: ChargePolicy, ref: str
    ) -> Settlement:
        """Past the deadline the transfer stays open: ask the gateway, with backoff, until
        it settles or fails (the webhook may have been lost); a webhook still ends the wait."""
        wait = max(policy.bank_transfer_deadline / 8, timedelta(seconds=1))
        longest = max(policy.bank_transfer_deadline, timedelta(seconds=1))
        while True:
            self._step(
                "settlement_overdue", f"transfer {ref} past its deadline; asking", inp.bill_id
            )
            found = await workflow.execute_activity_method(
                GatewayActivities.get_charge, GatewayReference(gateway_reference=ref), **LOOKUP
            )
            if found is not None:
                return found
            try:
                await workflow.wait_condition(lambda: ref in self._settlements, timeout=wait)
                return self._settlements[ref]
            except TimeoutError:
                wait = min(wait * 2, longest)

    async def _record(self, inp: ChargeInput, outcome: AttemptOutcome) -> BillRef:
        return await workflow.execute_activity_method(
            LedgerActivities.record_attempt,
            RecordAttemptInput(bill_id=inp.bill_id, outcome=outcome, next_try_at=self._next_try),
            **DB,
        )

    async def _exhausted(self, inp: ChargeInput, policy: ChargePolicy) -> ChargeResult:
        attempts = self._attempts
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
        self._step(
            "uncollectible",
            f"dunning exhausted after {attempts} attempts; customer {action}d",
            inp.bill_id,
        )
        return ChargeResult(bill_id=inp.bill_id, outcome="uncollectible", attempts=attempts)
