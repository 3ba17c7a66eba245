"""py-spy attached to one of the service's processes for one unmeasured repetition.

`py-spy record --format raw` writes collapsed stacks (one `frame;frame;... count` a line),
which speedscope and inferno read; `summary()` turns them into the shares quoted in
docs/benchmarks.md.
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
from pathlib import Path

log = logging.getLogger("bench")

# Frames where a thread waits rather than works: the event loop in epoll (uvloop runs it in
# C, so py-spy sees `Runner.run` on top; asyncio's own loop shows its selector), idle
# thread-pool workers.
_IDLE = (
    "Runner.run (", "Condition.wait (", "_worker (concurrent", "run_forever (", "select (",
    "EpollSelector.select (",
)  # fmt: skip
_LINE = re.compile(r":\d+\)$")


def py_spy() -> str | None:
    return shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")


@asynccontextmanager
async def recording(pid: int, out: Path, rate: int = 200) -> AsyncIterator[None]:
    """Sample `pid` while the block runs; without py-spy, say so and run unprofiled."""
    binary = py_spy()
    if binary is None:
        log.warning("py-spy is not installed (pip install py-spy): no profile of %s", out.stem)
        yield
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    argv = [binary, "record", "--pid", str(pid), "--output", str(out), "--format", "raw"]
    argv += ["--rate", str(rate), "--nonblocking"]
    spy = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )
    try:
        yield
    finally:
        spy.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
        try:
            async with asyncio.timeout(30):
                await spy.wait()
        except TimeoutError:
            spy.kill()
            await spy.wait()
    text = await asyncio.to_thread(summary, out)
    await asyncio.to_thread(out.with_suffix(".summary.txt").write_text, text)


def summary(raw: Path, top: int = 80) -> str:
    """Inclusive and self shares of the busy samples (idle waits left out), by function."""
    if not raw.exists():
        return "py-spy wrote nothing\n"
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    busy = idle = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = [_LINE.sub(")", f) for f in stack.split(";")]
        n = int(count)
        if frames[-1].startswith(_IDLE):
            idle += n
            continue
        busy += n
        own[frames[-1]] += n
        for frame in set(frames):
            inclusive[frame] += n
    lines = [f"{busy} busy samples, {idle} idle samples left out", "", "inclusive:"]
    lines += [f"{100 * c / max(busy, 1):5.1f}%  {f}" for f, c in inclusive.most_common(top)]
    lines += ["", "self:"]
    lines += [f"{100 * c / max(busy, 1):5.1f}%  {f}" for f, c in own.most_common(top // 2)]
    return "\n".join(lines) + "\n"
