"""Keeps the service's processes running: a child that dies is started again, with backoff.

Each child leads its own process group (so Ctrl-C reaches only the parent, which stops
the groups in order); its output goes to `logs/NAME.log` and to the terminal, prefixed.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from devstack.process import signal_group


@dataclass(frozen=True)
class ChildSpec:
    """How to start one child; the supervisor starts it again with the same spec."""

    name: str
    argv: Sequence[str]
    env: Mapping[str, str]
    cwd: Path


def describe_exit(code: int) -> str:
    if code < 0:
        return f"was killed by {signal.Signals(-code).name}"
    return f"exited with code {code}"


class Supervisor:
    """Runs children until `stop()`; a dead one restarts after 1s, 2s, 4s ... `max_backoff`."""

    def __init__(
        self,
        log_dir: Path,
        *,
        echo: Callable[[str], None] = print,
        min_backoff: float = 1.0,
        max_backoff: float = 30.0,
        stable_after: float = 30.0,
        stop_timeout: float = 10.0,
    ) -> None:
        self.log_dir = log_dir
        self.echo = echo
        self.min_backoff = min_backoff
        self.max_backoff = max_backoff
        self.stable_after = stable_after
        self.stop_timeout = stop_timeout
        self.restarts: dict[str, int] = {}
        self._procs: dict[str, asyncio.subprocess.Process] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = asyncio.Event()

    def start(self, spec: ChildSpec) -> None:
        self.restarts.setdefault(spec.name, 0)
        self._tasks.append(asyncio.create_task(self._keep_running(spec), name=spec.name))

    def pid(self, name: str) -> int | None:
        """The pid of the child now running under `name` (None between restarts)."""
        proc = self._procs.get(name)
        return proc.pid if proc is not None and proc.returncode is None else None

    async def _keep_running(self, spec: ChildSpec) -> None:
        backoff = self.min_backoff
        while not self._stopping.is_set():
            began = time.monotonic()
            code = await self._run_once(spec)
            if self._stopping.is_set():
                return
            if time.monotonic() - began > self.stable_after:
                backoff = self.min_backoff  # it had been healthy: a fresh crash, not a loop
            self.restarts[spec.name] += 1
            self.echo(
                f"[devstack] {spec.name} {describe_exit(code)}; restarting in {backoff:g}s "
                f"(restart {self.restarts[spec.name]}, log {self.log_dir / spec.name}.log)"
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=backoff)
            backoff = min(backoff * 2, self.max_backoff)

    async def _run_once(self, spec: ChildSpec) -> int:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with (self.log_dir / f"{spec.name}.log").open("ab") as log:
            log.write(f"==== {time.strftime('%Y-%m-%d %H:%M:%S')} starting {spec.name}\n".encode())
            proc = await asyncio.create_subprocess_exec(
                *spec.argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                env=dict(spec.env),
                cwd=spec.cwd,
                start_new_session=True,
            )
            self._procs[spec.name] = proc
            pump = asyncio.create_task(self._pump(spec.name, proc, log))
            code = await proc.wait()
            # A grandchild holding the pipe must not keep the pump (or a port) alive.
            signal_group(proc.pid, signal.SIGKILL)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(pump, timeout=2.0)
        return code

    async def _pump(
        self, name: str, proc: asyncio.subprocess.Process, log: io.BufferedWriter
    ) -> None:
        assert proc.stdout is not None
        prefix = f"{name:<8}| "
        async for raw in proc.stdout:
            log.write(raw)
            log.flush()
            self.echo(prefix + raw.decode(errors="replace").rstrip())

    async def stop(self) -> None:
        """Stop every child (SIGTERM to its group, SIGKILL after `stop_timeout`) and return."""
        self._stopping.set()
        running = [p for p in self._procs.values() if p.returncode is None]
        for proc in running:
            signal_group(proc.pid, signal.SIGTERM)
        for proc in running:
            try:
                await asyncio.wait_for(proc.wait(), timeout=self.stop_timeout)
            except TimeoutError:
                signal_group(proc.pid, signal.SIGKILL)
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for proc in self._procs.values():
            signal_group(proc.pid, signal.SIGKILL)
