"""The API served over the session's real servers; no fault is injected here."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio

from api.app import create_app
from config.settings import Settings
from tests.integration.harness import serve


@pytest_asyncio.fixture(loop_scope="session")
async def api(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(create_app(settings)) as url, httpx.AsyncClient(base_url=url) as client:
        yield client


@pytest.fixture
def service(settings: Settings) -> dict[str, str]:
    return {"Authorization": f"Bearer {settings.billing_api_key.get_secret_value()}"}


async def new_customer(api: httpx.AsyncClient, service: dict[str, str], **extra: Any) -> Any:
    body = {"name": "Sec", "email": "sec@example.com", **extra}
    created = await api.post("/v1/customers", json=body, headers=service)
    assert created.status_code == 201, created.text
    return created.json()
