"""py-spy attached to one of the service's processes for one unmeasured repetition.

`py-spy record --format raw` writes collapsed stacks (one `frame;frame;... count` a line),
which speedscope and inferno read; `summarize()` turns them into the shares by function
that `make bench` writes into docs/benchmarks.md ("Where the time goes").

The profiled repetition is not one of the measured ones: py-spy samples from a third
process on a 2-core machine, so it takes CPU the measured run would otherwise have.
"""

from __future__ import annotations

import asyncio
import logging
import re
import shutil
import signal
import sys
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("bench")

# Frames where a thread waits rather than works: the event loop in epoll (uvloop runs it in
# C, so py-spy sees `Runner.run` on top; asyncio's own loop shows its selector), idle
# thread-pool workers.
_IDLE = (
    "Runner.run (", "Condition.wait (", "_worker (concurrent", "run_forever (", "select (",
    "EpollSelector.select (",
)  # fmt: skip
_LINE = re.compile(r":\d+\)$")
_PROCESS = re.compile(r"^process \d+:")
_REPO = Path(__file__).resolve().parent.parent


def ours(frame: str) -> bool:
    """A function of this repository: py-spy names files from their sys.path entry, so the
    first part of the path is a package (or module) at the repository's root, or not."""
    where = frame.partition(" (")[2].rstrip(")")
    top = where.split("/", 1)[0]
    return bool(top) and "/" in where and (_REPO / top).is_dir() or (_REPO / where).is_file()


@dataclass(frozen=True)
class Profile:
    """Busy samples by function: inclusive (on the stack) and self (on top of it)."""

    name: str
    busy: int
    idle: int
    inclusive: list[tuple[str, int]]
    own: list[tuple[str, int]]

    def share(self, count: int) -> float:
        return count / max(self.busy, 1)

    def as_json(self, top: int = 25) -> dict[str, Any]:
        return {
            "busy_samples": self.busy,
            "idle_samples": self.idle,
            "inclusive": [[f, round(self.share(c), 4)] for f, c in self.inclusive[:top]],
            "self": [[f, round(self.share(c), 4)] for f, c in self.own[:top]],
        }


def py_spy() -> str | None:
    return shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")


@asynccontextmanager
async def recording(
    pid: int, out: Path, sink: dict[str, Profile], rate: int = 200
) -> AsyncIterator[None]:
    """Sample `pid` and its children while the block runs; the summary goes in `sink`."""
    binary = py_spy()
    if binary is None:
        log.warning("py-spy is not installed (pip install py-spy): no profile of %s", out.stem)
        yield
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    argv = [binary, "record", "--pid", str(pid), "--output", str(out), "--format", "raw"]
    # --subprocesses: with `--api-workers N` the requests are served by uvicorn's children.
    argv += ["--rate", str(rate), "--nonblocking", "--subprocesses"]
    spy = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )
    try:
        yield
    finally:
        spy.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
        try:
            async with asyncio.timeout(30):
                _, err = await spy.communicate()
        except TimeoutError:
            spy.kill()
            _, err = await spy.communicate()
    if not await asyncio.to_thread(out.exists):
        log.warning("py-spy wrote no profile of %s: %s", out.stem, err.decode()[-500:])
        return
    found = await asyncio.to_thread(summarize, out)
    sink[out.stem] = found
    await asyncio.to_thread(out.with_suffix(".summary.txt").write_text, text(found))


def summarize(raw: Path) -> Profile:
    """Inclusive and self counts of the busy samples (idle waits left out), by function."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    busy = idle = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = [_LINE.sub(")", f) for f in stack.split(";") if not _PROCESS.match(f)]
        if not frames:
            continue
        n = int(count)
        if frames[-1].startswith(_IDLE):
            idle += n
            continue
        busy += n
        own[frames[-1]] += n
        for frame in set(frames):
            inclusive[frame] += n
    return Profile(raw.stem, busy, idle, inclusive.most_common(), own.most_common())


def text(profile: Profile, top: int = 80) -> str:
    lines = [f"{profile.busy} busy samples, {profile.idle} idle samples left out", ""]
    lines += ["inclusive:"]
    lines += [f"{100 * profile.share(c):5.1f}%  {f}" for f, c in profile.inclusive[:top]]
    lines += ["", "self:"]
    lines += [f"{100 * profile.share(c):5.1f}%  {f}" for f, c in profile.own[: top // 2]]
    return "\n".join(lines) + "\n"


def _cell(frame: str) -> str:
    # `function (package/module.py)`, as py-spy names it; `|` would break the table.
    name, _, where = frame.partition(" (")
    where = where.rstrip(")").replace("|", "/")
    return f"`{name}` ({where})" if where else f"`{name}`"


def markdown(profile: Profile, top: int = 15) -> str:
    """The top frames as two tables: self time of any function (where the CPU is spent),
    and inclusive time of this repository's own functions (which step spends it)."""
    lines = [f"{profile.busy:,} busy samples of the API process at 200 Hz "
             f"({profile.idle:,} idle samples, the event loop waiting, left out).", "",
             "| self: on top of the stack | share |", "|---|---|"]  # fmt: skip
    lines += [f"| {_cell(f)} | {100 * profile.share(c):.1f}% |" for f, c in profile.own[:top]]
    lines += ["", "| inclusive, the service's own functions | share |", "|---|---|"]
    mine = [(f, c) for f, c in profile.inclusive if ours(f)]
    lines += [f"| {_cell(f)} | {100 * profile.share(c):.1f}% |" for f, c in mine[:top]]
    return "\n".join(lines)
