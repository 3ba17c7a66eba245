"""Each journey gets the whole stack and a database of its own (see tests/e2e/stack.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client

from config.settings import Settings
from tests.e2e.api_client import Api
from tests.e2e.stack import StackFactory, journey_stack
from tests.integration.harness import LiveStack


@pytest.fixture
def open_stack(settings: Settings, temporal_client: Client, tmp_path: Path) -> StackFactory:
    """`async with open_stack(dunning_schedule="1s,2m,2m") as live:` in a test."""

    def opened(**overrides: Any) -> AbstractAsyncContextManager[LiveStack]:
        return journey_stack(settings, temporal_client, tmp_path, **overrides)

    return opened


@pytest.fixture
async def live(open_stack: StackFactory) -> AsyncIterator[LiveStack]:
    async with open_stack() as stack:
        yield stack


@pytest.fixture
def api(live: LiveStack) -> Api:
    return Api(live.api, live.settings.billing_api_key.get_secret_value())
