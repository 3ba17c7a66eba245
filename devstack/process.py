"""A server child in its own process group: started, awaited until ready, stopped with nothing left.

Every child gets a new session, so a Ctrl-C in the terminal reaches only the parent, which
then stops each group in order; `stop()` signals the whole group and kills stragglers.
"""

from __future__ import annotations

import atexit
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from devstack.errors import ExitedWhileStarting, StartupError

_POLL_S = 0.1
_live: list[ManagedProcess] = []


def signal_group(pgid: int, sig: int) -> None:
    """Send `sig` to a process group; a group that is already gone is fine."""
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


# Lines that say why a process died, which a stack trace after them pushes out of the tail.
_CAUSES = ("panic:", "fatal error:", "Error:", "FATAL")


def log_tail(path: Path, lines: int = 8) -> str:
    """The last lines of a log, for an error message a person can act on, after the first
    line that gives a cause (a Go panic's message, say) when the tail does not hold it."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    all_lines = text.splitlines()
    tail = all_lines[-lines:]
    cause = next((line for line in all_lines if line.lstrip().startswith(_CAUSES)), None)
    if cause is not None and cause not in tail:
        tail = [cause, "..."] + tail
    return "\n".join("    " + line for line in tail)


class ManagedProcess:
    """One child process leading its own group, its output appended to `log_path`."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str | Path],
        log_path: Path,
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        user: tuple[int, int] | None = None,
        stop_signal: int = signal.SIGTERM,
    ) -> None:
        self.name = name
        self.log_path = log_path
        self.stop_signal = stop_signal
        log_path.parent.mkdir(parents=True, exist_ok=True)
        uid, gid = user if user is not None else (None, None)
        with log_path.open("ab") as log:
            self.popen = subprocess.Popen(
                [str(a) for a in argv],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=dict(env) if env is not None else None,
                cwd=cwd,
                user=uid,
                group=gid,
                extra_groups=[] if user is not None else None,
                start_new_session=True,
            )
        _live.append(self)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def running(self) -> bool:
        return self.popen.poll() is None

    def wait_ready(self, probe: Callable[[], bool], timeout: float, what: str) -> None:
        """Poll `probe` until it holds; a child that exits or a timeout is a StartupError."""
        deadline = time.monotonic() + timeout
        while True:
            code = self.popen.poll()
            if code is not None:
                raise ExitedWhileStarting(
                    f"{self.name} exited with code {code} while starting; "
                    f"its log {self.log_path} ends with:\n{log_tail(self.log_path)}"
                )
            if probe():
                return
            if time.monotonic() > deadline:
                self.stop()
                raise StartupError(
                    f"{self.name} was not {what} after {timeout:.0f}s; "
                    f"its log {self.log_path} ends with:\n{log_tail(self.log_path)}"
                )
            time.sleep(_POLL_S)

    def stop(self, timeout: float = 20.0) -> int:
        """Signal the group, wait, then SIGKILL whatever is left of it; returns the exit code."""
        if self.popen.poll() is None:
            signal_group(self.popen.pid, self.stop_signal)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                signal_group(self.popen.pid, signal.SIGKILL)
                self.popen.wait()
        # The leader is gone; grandchildren it did not wait for must not outlive it.
        signal_group(self.popen.pid, signal.SIGKILL)
        if self in _live:
            _live.remove(self)
        return self.popen.returncode


@atexit.register
def _stop_leftovers() -> None:
    # A crash or an unhandled error in the parent must not leave servers behind.
    for process in reversed(list(_live)):
        process.stop(timeout=10.0)
