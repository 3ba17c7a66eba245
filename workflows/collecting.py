"""Collecting one bill: the attempt and settle steps both collecting workflows run.

Not a workflow. `BillingCycleWorkflow` makes a bill's first attempt with it, and is done
when that attempt pays the bill; `ChargeWorkflow` makes every later attempt and takes
over whatever the first left open. One set of rules for both (issue 12):

- an attempt's key is `{charge saga id}-attempt-{n}`; the cycle's attempt is attempt 1 of
  `charge-{bill}`, so the saga goes on from attempt 2 and no key is ever used twice;
- the charge activity claims the bill first: another attempt's claim (`in_flight`) is
  resolved, by looking its key up, before anything else happens to the bill;
- unknown is not failed: an attempt whose answers stayed lost for the retry budget is
  looked up by its key until the gateway answers, and only that answer is recorded;
- no usable method is no attempt; a bank transfer is recorded pending and waited for
  (looked up past its deadline), never tried twice.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Literal

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.collect import CollectActivities
    from activities.collect_messages import ChargeAndRecordInput, ChargeRecorded
    from activities.config_messages import ChargePolicy
    from activities.gateway import GatewayActivities
    from activities.gateway_messages import (
        AttemptChargeInput,
        AttemptOutcome,
        GatewayReference,
        ResolveChargeInput,
        Settlement,
    )
    from activities.ledger import LedgerActivities
    from activities.ledger_messages import BillRef, RecordAttemptInput
    from billing.ledger import BillStatus
    from billing.payments import DeclineKind
    from workflows.charge_messages import ChargeResult
    from workflows.follow_ups import after_payment
    from workflows.options import DB, GATEWAY, LOOKUP, gateway_options

# Issue 12, each at the point where the old code went another way:
RESOLVE_UNKNOWN = "resolve-unknown-outcomes"  # a lost answer is looked up, never failed
LOOK_UP_OVERDUE = "look-up-overdue-transfers"  # a late transfer stays open
AWAIT_METHOD = "await-payment-method"  # no usable method: wait, record no attempt

Step = Callable[[str, str], None]
Outcome = Literal["paid", "uncollectible", "failed", "not_due"]


def attempt_key(saga_id: str, n: int) -> str:
    """Workflow id (unique per request) + attempt number: a retried activity reuses the
    key, a new try does not."""
    return f"{saga_id}-attempt-{n}"


class Collection:
    """One bill's attempts: how many, under which keys, which methods are excluded, and
    the transfers' settlements (the charge saga's `settle` signal writes them here)."""

    def __init__(self, step: Step) -> None:
        self.bill_id = ""
        self.customer_id = ""
        self.saga_id = ""
        self.attempts = 0
        self.excluded: list[str] = []
        self.settlements: dict[str, Settlement] = {}
        self.awaiting_method = False
        # When dunning tries next if the current attempt fails, for the recorded event.
        self.next_try: datetime | None = None
        self._step = step

    def start(self, bill_id: str, customer_id: str, saga_id: str, attempts: int = 0) -> None:
        self.bill_id, self.customer_id, self.saga_id = bill_id, customer_id, saga_id
        self.attempts = attempts

    def result(self, outcome: Outcome, attempts: int | None = None) -> ChargeResult:
        n = self.attempts if attempts is None else attempts
        return ChargeResult(bill_id=self.bill_id, outcome=outcome, attempts=n)

    def _next_key(self) -> str:
        self.attempts += 1
        self._step("charging", f"charging bill {self.bill_id}, attempt {self.attempts}")
        return attempt_key(self.saga_id, self.attempts)

    def _charge_input(self, key: str) -> AttemptChargeInput:
        return AttemptChargeInput(
            bill_id=self.bill_id,
            idempotency_key=key,
            excluded_payment_methods=self.excluded,
            workflow_id=self.saga_id,
        )

    async def first_attempt(self, policy: ChargePolicy) -> ChargeRecorded:
        """The cycle's attempt: charged and, if the outcome is one to record, recorded, in
        one activity. Answers lost past the retry budget are `unknown`, never failed."""
        key = self._next_key()
        delays = policy.dunning_delays
        self.next_try = workflow.now() + delays[0] if delays else None
        try:
            return await workflow.execute_activity_method(
                CollectActivities.charge_and_record,
                ChargeAndRecordInput(charge=self._charge_input(key), next_try_at=self.next_try),
                **gateway_options(policy.gateway_retry_budget),
            )
        except ActivityError:
            lost = AttemptOutcome(
                status="unknown", idempotency_key=key, message="the gateway's answer was lost"
            )
            return ChargeRecorded(outcome=lost)

    async def done_at_once(self, first: ChargeRecorded) -> ChargeResult | None:
        """The first attempt ends collecting when it paid the bill or nothing was due."""
        if first.outcome.status == "not_due":
            self._step("not_due", f"bill {self.bill_id} owes nothing")
            return self.result("not_due")
        if first.bill is not None and first.bill.status == BillStatus.PAID:
            return await self.paid(first.bill, first.outcome)
        return None

    async def attempt(self, policy: ChargePolicy) -> ChargeResult | None:
        """One try; a ChargeResult when collecting is done, None to keep dunning."""
        key = self._next_key()
        try:
            outcome = await workflow.execute_activity_method(
                GatewayActivities.charge,
                self._charge_input(key),
                **gateway_options(policy.gateway_retry_budget),
            )
        except ActivityError as err:
            if workflow.patched(RESOLVE_UNKNOWN):
                outcome = AttemptOutcome(status="unknown", idempotency_key=key)
            else:  # histories from before: a gateway that stayed away was a failed attempt
                outcome = AttemptOutcome(
                    status="failed", idempotency_key=key, method="unknown", message=str(err.cause)
                )
        return await self.take(policy, outcome)

    async def take(
        self, policy: ChargePolicy, outcome: AttemptOutcome, recorded: BillRef | None = None
    ) -> ChargeResult | None:
        """Act on what the current attempt came to (`recorded`: the bill after the cycle
        recorded it); a ChargeResult when collecting is done, None to keep dunning."""
        n = self.attempts
        if outcome.status == "unknown":
            outcome = await self.resolve(outcome.idempotency_key, "the gateway's answer was lost")
        if outcome.status == "in_flight":
            # An earlier attempt's outcome is unknown: resolve it before anything else.
            self.attempts -= 1
            earlier = await self.resolve(outcome.idempotency_key, "an earlier attempt")
            return await self.settle(policy, earlier) or await self.attempt(policy)
        if outcome.status == "not_due":
            self._step("not_due", f"bill {self.bill_id} owes nothing")
            return self.result("not_due", attempts=n)
        if outcome.status == "no_method" and workflow.patched(AWAIT_METHOD):
            # No gateway call, so no attempt: wait for a method (or pay-now) instead.
            self.attempts -= 1
            self.awaiting_method = True
            self._step("awaiting_payment_method", "no usable payment method on file")
            return None
        self.awaiting_method = False
        return await self.settle(policy, outcome, recorded)

    async def resolve(self, key: str, why: str) -> AttemptOutcome:
        """Look the attempt up by its key until the gateway answers: unknown is not failed."""
        self._step("resolving", f"{why}; looking up {key} at the gateway")
        return await workflow.execute_activity_method(
            GatewayActivities.resolve_charge,
            ResolveChargeInput(bill_id=self.bill_id, idempotency_key=key),
            **LOOKUP,
        )

    async def settle(
        self, policy: ChargePolicy, outcome: AttemptOutcome, recorded: BillRef | None = None
    ) -> ChargeResult | None:
        """Record a definite outcome (waiting for a transfer first); done when paid."""
        if outcome.status == "pending" and outcome.gateway_reference:
            if recorded is None:
                await self.record(outcome)
            outcome = await self._await_settlement(policy, outcome)
            recorded = None
        bill = recorded or await self.record(outcome)
        if bill.status == BillStatus.PAID:
            return await self.paid(bill, outcome)
        if outcome.decline_kind == DeclineKind.HARD and outcome.payment_method_id:
            self.excluded.append(outcome.payment_method_id)
        return None

    async def paid(self, bill: BillRef, outcome: AttemptOutcome) -> ChargeResult:
        await after_payment(self.customer_id, bill, outcome.gateway_reference or "")
        self._step("paid", f"bill {self.bill_id} paid ({outcome.method})")
        return self.result("paid")

    async def _await_settlement(
        self, policy: ChargePolicy, pending: AttemptOutcome
    ) -> AttemptOutcome:
        ref = pending.gateway_reference
        assert ref is not None
        self._step("awaiting_settlement", f"bank transfer {ref} pending settlement")
        settlement: Settlement | None
        try:
            await workflow.wait_condition(
                lambda: ref in self.settlements, timeout=policy.bank_transfer_deadline
            )
            settlement = self.settlements[ref]
        except TimeoutError:
            if workflow.patched(LOOK_UP_OVERDUE):
                settlement = await self._look_up_until_settled(policy, ref)
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

    async def _look_up_until_settled(self, policy: ChargePolicy, ref: str) -> Settlement:
        """Past the deadline the transfer stays open: ask the gateway, with backoff, until
        it settles or fails (the webhook may have been lost); a webhook still ends the wait."""
        wait = max(policy.bank_transfer_deadline / 8, timedelta(seconds=1))
        longest = max(policy.bank_transfer_deadline, timedelta(seconds=1))
        while True:
            self._step("settlement_overdue", f"transfer {ref} past its deadline; asking")
            found = await workflow.execute_activity_method(
                GatewayActivities.get_charge, GatewayReference(gateway_reference=ref), **LOOKUP
            )
            if found is not None:
                return found
            try:
                await workflow.wait_condition(lambda: ref in self.settlements, timeout=wait)
                return self.settlements[ref]
            except TimeoutError:
                wait = min(wait * 2, longest)

    async def record(self, outcome: AttemptOutcome) -> BillRef:
        return await workflow.execute_activity_method(
            LedgerActivities.record_attempt,
            RecordAttemptInput(bill_id=self.bill_id, outcome=outcome, next_try_at=self.next_try),
            **DB,
        )
