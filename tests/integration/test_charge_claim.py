"""One charge of a bill in flight at a time: racing attempts cannot capture twice."""

from __future__ import annotations

import asyncio
import uuid

from temporalio.exceptions import ApplicationError

from activities.gateway import CLAIM_RACE, GatewayActivities
from activities.gateway_messages import AttemptChargeInput
from activities.ledger import LedgerActivities
from activities.ledger_messages import IssueCycleBillInput, RecordAttemptInput
from billing.catalog import DEFAULT_CATALOG
from payments.simulator import SimulatorGateway

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
        payments = GatewayActivities(db_pool, gateway)
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
