"""Fixtures of the fault tests: their own servers, which they stop and start at will.

The session's shared Postgres, Redis and Temporal (tests/conftest.py) are never touched
here: stopping a server that other tests use would fail them. These servers live in
their own temporary directory on free ports, and are stopped at the end.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from .servers import FaultServers

_FIGURES: list[dict[str, Any]] = []


@pytest.fixture(scope="package")
def fault_root() -> Iterator[Path]:
    # Not under pytest's basetemp (0700): Postgres runs as an unprivileged user under root.
    path = Path(tempfile.mkdtemp(prefix="billing-faults-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest_asyncio.fixture(scope="package", loop_scope="session")
async def fault_servers(fault_root: Path) -> AsyncIterator[FaultServers]:
    servers = FaultServers(fault_root)
    try:
        await servers.ensure_all()
        yield servers
    finally:
        await servers.stop_all()


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> Any:
    """`figures(**values)` keeps a test's measurements for the end-of-run summary."""

    def record(**values: Any) -> None:
        _FIGURES.append({"test": request.node.name, **values})

    return record


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _FIGURES:
        return
    terminalreporter.section("fault figures")
    for entry in _FIGURES:
        terminalreporter.write_line(json.dumps(entry, default=str))
