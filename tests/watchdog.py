"""A hung test fails the run within minutes, with the evidence, instead of stalling CI.

Every test (its setup and teardown included) gets a time limit. When one overruns, this
prints which test it was, every thread's stack and every unfinished asyncio task's stack
(to the terminal, out from under pytest's capture, and to `.pytest-hang.txt`), stops the
servers this session started (they are children of this process), and exits with
status 124, as `timeout` does.

Why not pytest-timeout: its thread method prints thread stacks only, and for a hang inside
the event loop that is a thread idling in `select()`; what matters is which task waits on
what. Its signal method raises inside the session's event loop and leaves it unusable for
every later test.
"""

from __future__ import annotations

import asyncio
import faulthandler
import gc
import io
import os
import sys
import threading
import traceback
from pathlib import Path

import psutil
import pytest

#: Seconds a test may take, setup and teardown included; a chaos test gets three times this.
LIMIT_S = float(os.environ.get("TEST_HANG_LIMIT_S", "600"))
EXIT_HUNG = 124
REPORT_FILE = ".pytest-hang.txt"


def limit_for(item: pytest.Item) -> float:
    return LIMIT_S * 3 if item.get_closest_marker("chaos") else LIMIT_S


def _unfinished_tasks() -> list[asyncio.Task[object]]:
    # Read from another thread: fine for a post-mortem, the loop is stuck anyway.
    return [o for o in gc.get_objects() if isinstance(o, asyncio.Task) and not o.done()]


def _report(nodeid: str, limit_s: float) -> str:
    out = io.StringIO()
    out.write(f"\n=== HUNG: {nodeid} ran past {limit_s:.0f} s; stacks follow ===\n")
    out.write("--- threads ---\n")
    for thread_id, frame in sys._current_frames().items():
        out.write(f"thread {thread_id}:\n")
        out.write("".join(traceback.format_stack(frame)))
    out.write("--- asyncio tasks ---\n")
    for task in _unfinished_tasks():
        out.write(f"{task!r}\n")
        task.print_stack(file=out)
    return out.getvalue()


def _stop_children() -> None:
    children = psutil.Process().children(recursive=True)
    for child in children:
        try:
            child.terminate()
        except psutil.Error:
            pass
    _, alive = psutil.wait_procs(children, timeout=10)
    for child in alive:
        try:
            child.kill()
        except psutil.Error:
            pass


def _fire(config: pytest.Config, nodeid: str, limit_s: float) -> None:
    try:
        report = _report(nodeid, limit_s)
        Path(config.rootpath, REPORT_FILE).write_text(report)
        # pytest captures file descriptors 1 and 2 while a test runs; what is written
        # there is lost on exit. Suspending its capture restores the real terminal.
        capture = config.pluginmanager.getplugin("capturemanager")
        if capture is not None:
            capture.suspend_global_capture(in_=True)
        sys.stderr.write(report)
        sys.stderr.flush()
    except Exception:  # the report is best effort; the exit is not
        faulthandler.dump_traceback(all_threads=True)
    _stop_children()
    os._exit(EXIT_HUNG)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> object:
    limit_s = limit_for(item)
    timer = threading.Timer(limit_s, _fire, args=(item.config, item.nodeid, limit_s))
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
