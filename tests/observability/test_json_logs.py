"""A full run of the real processes: every line they write is JSON and carries no secret.

The worker (`python worker.py`) and the API (`uvicorn api.app:create_app --factory`) run
as `make run` starts them, on the session's Postgres, Redis and Temporal, with secrets
of this test's own; a journey goes through them over HTTP; then their output is read.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import secrets
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from devstack.services import free_port
from gateway_sim.app import create_app as create_gateway
from tests.integration.harness import bound_socket, serve

from .journey import PERIOD, PERIOD_START

ROOT = Path(__file__).resolve().parents[2]
CARD = "4242 4242 4242 4242"


class Run:
    """The processes of one run and what they wrote."""

    def __init__(self, tmp_path: Path, env: dict[str, str], api_url: str) -> None:
        self.tmp_path = tmp_path
        self.env = env
        self.api_url = api_url
        self.logs: dict[str, Path] = {}
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, name: str, argv: list[str]) -> None:
        log = self.tmp_path / f"{name}.log"
        self.logs[name] = log
        with log.open("wb") as out:
            self.procs.append(
                subprocess.Popen(
                    argv,
                    cwd=ROOT,
                    env=self.env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )  # fmt: skip
            )

    def stop(self) -> None:
        """SIGTERM, as the dev stack's supervisor stops its children."""
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

    def lines(self, name: str) -> list[str]:
        return [line for line in self.logs[name].read_text().splitlines() if line.strip()]


@pytest.fixture
async def run(settings, tmp_path) -> AsyncIterator[Run]:
    api_port, sim_sock = free_port(), bound_socket()
    api_url = f"http://127.0.0.1:{api_port}"
    sim_url = f"http://127.0.0.1:{sim_sock.getsockname()[1]}"
    env = {
        **os.environ,
        "ENVIRONMENT": "test",
        "DATABASE_URL": settings.database_url,
        "REDIS_URL": settings.redis_url,
        "TEMPORAL_ADDRESS": settings.temporal_address,
        "TASK_QUEUE": f"logs-{uuid.uuid4().hex[:8]}",
        "BILLING_API_KEY": "sk_live_" + secrets.token_urlsafe(24),
        "GATEWAY_WEBHOOK_SECRET": "whsec_" + secrets.token_urlsafe(24),
        "PAYLOAD_CODEC_KEY": base64.b64encode(os.urandom(32)).decode(),
        "PAYLOAD_CODEC_KEY_ID": "logs-test",
        "GATEWAY_URL": sim_url,
        "GATEWAY_WEBHOOK_URL": f"{api_url}/v1/webhooks/gateway",
        "API_PORT": str(api_port),
        "WORKER_METRICS_PORT": str(free_port()),
        "TEMPORAL_SDK_METRICS_PORT": str(free_port()),
        "DUNNING_SCHEDULE": "300ms,300ms,300ms",
        "LOG_FORMAT": "json",
        "PYTHONUNBUFFERED": "1",
    }
    sim_settings = settings.model_copy(update={
        "gateway_webhook_url": env["GATEWAY_WEBHOOK_URL"],
        "gateway_webhook_secret": SecretStr(env["GATEWAY_WEBHOOK_SECRET"]),
        "gateway_db_path": str(tmp_path / "gateway.sqlite3"),
    })  # fmt: skip
    processes = Run(tmp_path, env, api_url)
    async with serve(create_gateway(sim_settings), sim_sock):
        processes.start("worker", [sys.executable, "worker.py"])
        api = [sys.executable, "-m", "uvicorn", "api.app:create_app", "--factory"]
        processes.start("api", [*api, "--host", "127.0.0.1", "--port", str(api_port)])
        try:
            yield processes
        finally:
            await asyncio.to_thread(processes.stop)


async def healthy(http: httpx.AsyncClient) -> None:
    for _ in range(300):
        try:
            if (await http.get("/healthz")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.1)
    raise AssertionError("the API did not become healthy")


async def finished(http: httpx.AsyncClient, workflow_id: str) -> dict[str, Any]:
    for _ in range(300):
        status = (await http.get(f"/v1/workflows/{workflow_id}")).json()
        if status["status"] not in ("RUNNING", "UNKNOWN"):
            return dict(status)
        await asyncio.sleep(0.1)
    raise AssertionError(f"{workflow_id} did not finish")


async def journey(run: Run) -> dict[str, str]:
    """Every kind of request a day brings, including refused ones; returns what it saw."""
    key = run.env["BILLING_API_KEY"]
    auth = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=run.api_url, headers=auth, timeout=30) as http:
        await healthy(http)
        body = {"name": "Ada", "email": "ada@example.com", "tier": "starter",
                "started_at": PERIOD_START.isoformat()}  # fmt: skip
        created = (await http.post("/v1/customers", json=body)).json()
        cid = created["id"]
        card = {"type": "credit_card", "token": CARD}
        refused = await http.post(f"/v1/customers/{cid}/payment-methods", json=card)
        assert refused.status_code == 422
        token = {"type": "credit_card", "token": "tok_success"}
        assert (await http.post(f"/v1/customers/{cid}/payment-methods", json=token)).is_success
        bad = {"Authorization": f"Bearer {created['api_key']}x"}
        assert (await http.get(f"/v1/customers/{cid}", headers=bad)).status_code == 401
        mine = {"Authorization": f"Bearer {created['api_key']}"}
        event = {"event_id": "e1", "customer_id": cid, "kind": "api_call", "quantity": 3}
        assert (await http.post("/v1/usage", json=event, headers=mine)).status_code == 201
        cycle = await http.post(f"/v1/customers/{cid}/billing-cycles", json={"period": PERIOD})
        status = await finished(http, cycle.json()["workflow_id"])
        bill_id = status["details"]["bill_id"]
        assert (await http.get(f"/v1/bills/{bill_id}")).json()["status"] == "paid"
        refund = await http.post(f"/v1/bills/{bill_id}/refunds",
                                 json={"amount": "1.00", "reason": "goodwill"})  # fmt: skip
        await finished(http, refund.json()["workflow_id"])
        assert (await http.get("/metrics")).status_code == 200
    return {"customer_id": cid, "bill_id": bill_id, "customer_key": created["api_key"],
            "workflow_id": cycle.json()["workflow_id"]}  # fmt: skip


async def test_every_line_of_a_full_run_is_json_without_a_secret(run: Run):
    seen = await journey(run)
    await asyncio.to_thread(run.stop)

    never = [
        run.env["BILLING_API_KEY"],
        run.env["GATEWAY_WEBHOOK_SECRET"],
        run.env["PAYLOAD_CODEC_KEY"],
        seen["customer_key"],
        "tok_success",
        CARD,
        CARD.replace(" ", ""),
    ]
    records: dict[str, list[dict[str, Any]]] = {}
    for name in ("worker", "api"):
        lines = run.lines(name)
        assert lines, f"the {name} wrote nothing"
        records[name] = []
        for line in lines:
            record = json.loads(line)  # fails the test on the first line that is not JSON
            assert {"ts", "level", "logger", "message", "service"} <= set(record), line
            assert record["service"] == name
            records[name].append(record)
            for secret in never:
                assert secret not in line, f"{name} logged a secret: {line}"

    api = records["api"]
    # The access log of the customer's routes carries the customer id.
    assert any(r.get("customer_id") == seen["customer_id"] for r in api)
    assert any(r.get("bill_id") == seen["bill_id"] for r in api)
    assert any(r.get("workflow_id") == seen["workflow_id"] for r in api)
    # In the worker, a line written while an activity ran carries its saga's ids.
    worker = records["worker"]
    assert any(r.get("workflow_id") and r.get("bill_id") == seen["bill_id"] for r in worker), worker
