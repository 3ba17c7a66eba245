"""The worker and the gateway simulator as real subprocesses, kept running as `make run` does.

They run under devstack's Supervisor: a child that dies (SIGKILL included) is started
again after a short backoff, and its output is appended to `logs/NAME.log`, which the
security tests read whole.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Mapping
from pathlib import Path

import httpx

from devstack.supervisor import ChildSpec, Supervisor

from .polling import until

REPO_ROOT = Path(__file__).resolve().parents[2]


class Processes:
    """`worker` and `gateway` children; `kill_worker()` is SIGKILL, not a shutdown."""

    def __init__(self, log_dir: Path, env: Mapping[str, str]) -> None:
        self.log_dir = log_dir
        # Metrics ports 0: a running `make run` worker keeps 9464 and 9465.
        quiet = {"WORKER_METRICS_PORT": "0", "TEMPORAL_SDK_METRICS_PORT": "0"}
        self.env = {**os.environ, **quiet, **env, "PYTHONUNBUFFERED": "1"}
        self.supervisor = Supervisor(log_dir, echo=lambda _line: None, min_backoff=0.5)

    def start_worker(self) -> None:
        self.supervisor.start(
            ChildSpec("worker", [sys.executable, "worker.py"], self.env, REPO_ROOT)
        )

    def start_gateway(self) -> None:
        argv = [sys.executable, "-m", "gateway_sim"]
        self.supervisor.start(ChildSpec("gateway", argv, self.env, REPO_ROOT))

    async def wait_worker_polling(self, within: float = 30.0) -> float:
        """Seconds until the current worker process says it polls its task queue."""
        log = self.log_dir / "worker.log"

        async def polling() -> bool:
            if self.supervisor.pid("worker") is None or not log.exists():
                return False
            # The newest run's part of the log: the supervisor marks each start with ====.
            tail = log.read_text(errors="replace").rsplit("==== ", 1)[-1]
            return "worker polling task queue" in tail

        return await until(polling, within)

    def start_api(self, port: int) -> None:
        argv = [sys.executable, "-m", "uvicorn", "api.app:create_app", "--factory"]
        argv += ["--host", "127.0.0.1", "--port", str(port)]
        self.supervisor.start(ChildSpec("api", argv, self.env, REPO_ROOT))

    async def wait_http(self, url: str, within: float = 30.0) -> None:
        """Until `url` answers 200."""
        async with httpx.AsyncClient() as client:

            async def answers() -> bool:
                try:
                    response = await client.get(url)
                except httpx.TransportError:
                    return False
                return response.status_code == 200

            await until(answers, within)

    async def kill_worker(self) -> int:
        """SIGKILL the running worker; returns its pid. The supervisor starts a new one."""

        async def running() -> bool:
            return self.supervisor.pid("worker") is not None

        await until(running, 30, every=0.05)
        pid = self.supervisor.pid("worker")
        assert pid is not None
        os.kill(pid, signal.SIGKILL)

        async def gone() -> bool:
            return self.supervisor.pid("worker") != pid

        await until(gone, 30, every=0.02)
        return pid

    @property
    def worker_restarts(self) -> int:
        return self.supervisor.restarts.get("worker", 0)

    async def stop(self) -> None:
        await self.supervisor.stop()

    def logs(self) -> dict[str, str]:
        """Every child's whole log, by name."""
        return {p.stem: p.read_text(errors="replace") for p in self.log_dir.glob("*.log")}
