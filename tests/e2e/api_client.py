"""A client of the billing API as an operator would script it: HTTP only, waits by polling.

Shared by the e2e journeys and `scripts/demo.py`, which runs them against `make run`.
Nothing here asserts: a status that is not the expected one raises `JourneyError` with
the answer, so a demo says what went wrong and a test fails with it.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

Say = Callable[[str], None]


class JourneyError(Exception):
    """The API did not answer as the journey expects."""


def _quiet(_: str) -> None:
    return None


@dataclass
class Api:
    http: httpx.AsyncClient
    key: str
    say: Say = _quiet
    timeout_s: float = 90.0
    poll_s: float = 0.15

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    async def call(self, method: str, path: str, expect: int | tuple[int, ...] = 200,
                   **kwargs: Any) -> httpx.Response:  # fmt: skip
        """The answer, if its status is one of `expect`; else JourneyError naming both."""
        answer = await self.http.request(method, path, headers=self.auth, **kwargs)
        wanted = (expect,) if isinstance(expect, int) else expect
        if answer.status_code not in wanted:
            raise JourneyError(
                f"{method} {path}: expected {wanted}, got {answer.status_code} {answer.text[:300]}"
            )
        return answer

    async def json(self, method: str, path: str, expect: int | tuple[int, ...] = 200,
                   **kwargs: Any) -> dict[str, Any]:  # fmt: skip
        body: dict[str, Any] = (await self.call(method, path, expect, **kwargs)).json()
        return body

    async def customer(self, name: str, tier: str = "free", *, token: str | None = None,
                       method: str = "credit_card", tax_rate: str = "0",
                       started_at: datetime | None = None) -> dict[str, Any]:  # fmt: skip
        body: dict[str, Any] = {
            "name": name,
            "email": f"{name.lower().replace(' ', '.')}.{uuid.uuid4().hex[:8]}@example.com",
            "tier": tier,
            "tax_rate": tax_rate,
        }
        if started_at is not None:
            body["started_at"] = started_at.isoformat()
        created = await self.json("POST", "/v1/customers", 201, json=body)
        if token is not None:
            await self.attach(created["id"], token, method)
        self.say(f"customer {created['id']} ({name}, {tier}) created")
        return created

    async def attach(self, customer_id: str, token: str, method: str = "credit_card") -> None:
        await self.call("POST", f"/v1/customers/{customer_id}/payment-methods", 201,
                        json={"type": method, "token": token})  # fmt: skip

    def events(self, customer_id: str, usage: list[tuple[str, int]],
               occurred_at: datetime | None = None) -> list[dict[str, Any]]:  # fmt: skip
        out = []
        for kind, quantity in usage:
            event: dict[str, Any] = {
                "event_id": f"ev_{uuid.uuid4().hex}",
                "customer_id": customer_id,
                "kind": kind,
                "quantity": quantity,
            }
            if occurred_at is not None:
                event["occurred_at"] = occurred_at.isoformat()
            out.append(event)
        return out

    async def record(self, customer_id: str, usage: list[tuple[str, int]],
                     occurred_at: datetime | None = None) -> dict[str, Any]:  # fmt: skip
        """One batch; JourneyError unless every event was accepted."""
        events = self.events(customer_id, usage, occurred_at)
        answer = await self.json("POST", "/v1/usage/batch", json={"events": events})
        if answer["accepted"] != len(events):
            raise JourneyError(f"usage of {customer_id} not all accepted: {answer}")
        return answer

    async def workflow(self, workflow_id: str) -> dict[str, Any] | None:
        answer = await self.call("GET", f"/v1/workflows/{workflow_id}", (200, 404))
        return None if answer.status_code == 404 else dict(answer.json())

    async def until(self, what: str, check: Callable[[], Any]) -> Any:
        """Poll the async `check` until it returns something truthy, within timeout_s."""
        deadline = time.monotonic() + self.timeout_s
        while True:
            value = await check()
            if value:
                return value
            if time.monotonic() > deadline:
                raise JourneyError(f"gave up after {self.timeout_s:.0f}s waiting for {what}")
            await asyncio.sleep(self.poll_s)

    async def finished(self, workflow_id: str, status: str = "COMPLETED") -> dict[str, Any]:
        """Wait for the workflow to close; JourneyError if it closes any other way."""

        async def closed() -> dict[str, Any] | None:
            found = await self.workflow(workflow_id)
            return found if found and found["status"] != "RUNNING" else None

        done: dict[str, Any] = await self.until(f"{workflow_id} to finish", closed)
        if done["status"] != status:
            raise JourneyError(f"{workflow_id} ended {done['status']}, not {status}: {done}")
        self.say(
            f"  {workflow_id}: {done['status']} ({done['step']}: {done['details']['summary']})"
        )
        return done

    async def bills(self, customer_id: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = (
            await self.json("GET", f"/v1/customers/{customer_id}/bills")
        )["bills"]
        return found

    async def bill(self, bill_id: str) -> dict[str, Any]:
        return await self.json("GET", f"/v1/bills/{bill_id}")

    async def bill_period(self, customer_id: str, period: str) -> dict[str, Any]:
        """Start the customer's cycle for `period`, wait for it, and answer the bill."""
        started = await self.json("POST", f"/v1/customers/{customer_id}/billing-cycles", 202,
                                  json={"period": period})  # fmt: skip
        await self.finished(started["workflow_id"])
        return await self.cycle_bill(customer_id, period)

    async def cycle_bill(self, customer_id: str, period: str) -> dict[str, Any]:
        """The customer's one cycle bill of `period`."""
        found = [b for b in await self.bills(customer_id)
                 if b["kind"] == "cycle" and b["period"] == period]  # fmt: skip
        if len(found) != 1:
            raise JourneyError(f"{customer_id} has {len(found)} cycle bills for {period}")
        return found[0]

    async def billing_run(self, period: str, customer_ids: list[str]) -> list[dict[str, Any]]:
        """Bill every customer for `period`; wait for these customers' cycles; their bills."""
        started = await self.json("POST", "/v1/billing-runs", 202, json={"period": period})
        self.say(f"billing run {started['workflow_id']} started")
        await self.finished(started["workflow_id"])
        bills = []
        for cid in customer_ids:
            await self.finished(f"bill-{cid}-{period}")
            bills.append(await self.cycle_bill(cid, period))
        return bills

    async def refund(self, bill_id: str, amount: str | None, reason: str) -> dict[str, Any]:
        body: dict[str, Any] = {"reason": reason} | ({"amount": amount} if amount else {})
        started = await self.json("POST", f"/v1/bills/{bill_id}/refunds", 202, json=body)
        await self.finished(started["workflow_id"])
        return await self.bill(bill_id)

    async def report(self, period: str) -> dict[str, Any]:
        return await self.json("GET", "/v1/reports/revenue", params={"period": period})
