"""One charge of a bill in flight at a time: racing attempts cannot capture twice."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from temporalio.exceptions import ApplicationError

from activities.gateway import CLAIM_RACE, CLAIM_STILL_OPEN, GatewayActivities
from activities.gateway_messages import AttemptChargeInput, ResolveChargeInput
from activities.ledger import LedgerActivities
from activities.ledger_messages import IssueCycleBillInput, RecordAttemptInput
from billing.catalog import DEFAULT_CATALOG
from payments.simulator import SimulatorGateway
from store import bills as bills_sql

from .harness import live_stack
from .test_sagas_live import PERIOD, customer


async def test_racing_attempts_on_one_bill_capture_once(
    settings, db_pool, temporal_client, tmp_path
):
    async with live_stack(settings, db_pool, temporal_client, tmp_path) as live:
        cid = (await customer(live, tier="starter", token="tok_success"))["id"]
        ledger = LedgerActivities(db_pool, DEFAULT_CATALOG)
        issued = await ledger.issue_cycle_bill(
            IssueCycleBillInput(customer_id=cid, period=PERIOD, workflow_id="test")
        )
        assert issued.bill is not None
        bill_id = issued.bill.bill_id
        gateway = SimulatorGateway(live.settings.gateway_url)
        payments = GatewayActivities(db_pool, gateway, claim_lease=timedelta(minutes=2))
        keys = [f"race-{uuid.uuid4().hex[:6]}-{n}" for n in range(4)]
        results = await asyncio.gather(
            *(payments.charge(AttemptChargeInput(bill_id=bill_id, idempotency_key=k,
                                                 workflow_id="test")) for k in keys),
            return_exceptions=True,
        )  # fmt: skip
        outcomes = [r for r in results if not isinstance(r, BaseException)]
        won = [r for r in outcomes if r.status != "in_flight"]
        assert len(won) == 1
        # A loser either lost the race to the claim (retried) or saw the winner's claim,
        # which it must resolve before trying: never a second gateway call.
        raced = [r for r in results if isinstance(r, ApplicationError)]
        assert {e.type for e in raced} <= {CLAIM_RACE}
        waiting = [r for r in outcomes if r.status == "in_flight"]
        assert len(raced) + len(waiting) == 3
        assert {r.idempotency_key for r in waiting} <= {won[0].idempotency_key}
        retried = await payments.charge(
            AttemptChargeInput(bill_id=bill_id, idempotency_key="a-loser", workflow_id="test")
        )
        assert (retried.status, retried.idempotency_key) == ("in_flight", won[0].idempotency_key)
        # The winner's retry (same key) is allowed and answers the first result.
        again = await payments.charge(
            AttemptChargeInput(bill_id=bill_id, idempotency_key=won[0].idempotency_key,
                               workflow_id="test")
        )  # fmt: skip
        assert again.gateway_reference == won[0].gateway_reference
        await ledger.record_attempt(RecordAttemptInput(bill_id=bill_id, outcome=won[0]))
        # Recorded: the claim is released and the bill is paid, so nothing more is due.
        after = await payments.charge(
            AttemptChargeInput(bill_id=bill_id, idempotency_key="after", workflow_id="test")
        )
        assert after.status == "not_due"
        assert (await live.sim_charges(bill_id=bill_id))["captures"] == 1
        await gateway.aclose()


async def test_nothing_under_a_fresh_claims_key_is_not_yet_an_answer(
    settings, db_pool, temporal_client, tmp_path
):
    """A claim whose call may still reach the gateway is not resolved as "nothing taken".

    The billing cycle makes a bill's first attempt itself, before any charge saga runs, so
    a pay-now in that window starts its own saga, finds the cycle's claim and resolves its
    key. Were "no charge under the key" trusted while the cycle's call is on its way, the
    claim would be released, pay-now would charge, and the cycle's call would capture too.
    """
    async with live_stack(settings, db_pool, temporal_client, tmp_path) as live:
        cid = (await customer(live, tier="starter", token="tok_success"))["id"]
        ledger = LedgerActivities(db_pool, DEFAULT_CATALOG)
        issued = await ledger.issue_cycle_bill(
            IssueCycleBillInput(customer_id=cid, period=PERIOD, workflow_id="test")
        )
        assert issued.bill is not None
        bill_id = issued.bill.bill_id
        key = f"charge-{bill_id}-attempt-1"
        async with db_pool.acquire() as conn:
            amount = Decimal("29.00")
            await conn.execute(bills_sql.CLAIM_ATTEMPT, key, bill_id, "card", None, amount)
        gateway = SimulatorGateway(live.settings.gateway_url)
        ask = ResolveChargeInput(bill_id=bill_id, idempotency_key=key)

        try:
            leased = GatewayActivities(db_pool, gateway, claim_lease=timedelta(minutes=2))
            with pytest.raises(ApplicationError) as still_open:
                await leased.resolve_charge(ask)
            expired = GatewayActivities(db_pool, gateway, claim_lease=timedelta(0))
            answer = await expired.resolve_charge(ask)
        finally:
            await gateway.aclose()
        assert still_open.value.type == CLAIM_STILL_OPEN
        assert not still_open.value.non_retryable  # the look-up is asked again, with backoff
        assert (answer.status, answer.idempotency_key) == ("failed", key)
        assert "nothing was taken" in answer.message
