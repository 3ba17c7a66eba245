"""Headless Chromium (Debian's `chromium`, driven by Playwright without a browser download).

The browser tests get a Temporal dev server of their own *with* its Web UI (the session's
is headless), the live stack against it on a fresh database, and six months of billing
made through the API. They skip only when no Chromium is installed, and say so loudly.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import Browser, async_playwright
from temporalio.client import Client

from config.settings import Settings
from devstack.services import TemporalServer, free_port, start_temporal
from tests.browser.history import History, six_months
from tests.converter import DATA_CONVERTER
from tests.e2e.api_client import Api
from tests.e2e.stack import journey_stack
from tests.integration.harness import LiveStack

# Screenshots land in a temporary folder so that `make test` leaves the tree clean;
# `make screenshots` sets SCREENSHOTS_DIR=docs to refresh the committed ones.
DOCS = Path(
    os.environ.get("SCREENSHOTS_DIR") or Path(tempfile.gettempdir()) / "billing-screenshots"
).resolve()
_CANDIDATES = ("chromium", "chromium-browser", "google-chrome")
_skipped: list[str] = []


def chromium_executable() -> str | None:
    """$CHROMIUM if set, else the first Chromium on PATH."""
    named = os.environ.get("CHROMIUM")
    if named:
        return named
    return next((found for c in _CANDIDATES if (found := shutil.which(c))), None)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _skipped:
        terminalreporter.section("BROWSER TESTS SKIPPED: NO CHROMIUM", sep="!", red=True)
        terminalreporter.line(
            "the browser tests did not run: install Debian's chromium "
            "(apt-get install -y chromium) or set CHROMIUM=/path/to/chrome",
            red=True,
            bold=True,
        )


def encrypted_payloads() -> bool:
    """True when workflow payloads (summaries too) reach Temporal sealed by a codec."""
    return DATA_CONVERTER.payload_codec is not None


@pytest.fixture(scope="session")
def chromium(request: pytest.FixtureRequest) -> str:
    path = chromium_executable()
    if path is None:
        if os.environ.get("CI") or os.environ.get("REQUIRE_BROWSER"):
            pytest.fail("CI needs Chromium for the browser tests: .ci/run installs it")
        _skipped.append(request.node.nodeid)
        pytest.skip("NO CHROMIUM INSTALLED: apt-get install -y chromium (browser tests skipped)")
    return path


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def browser(chromium: str) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        # --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
        launched = await playwright.chromium.launch(
            executable_path=chromium, args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture(scope="session")
def temporal_ui(devstack_dir: Path) -> Iterator[TemporalServer]:
    """A dev server with its Web UI: the session's own is started headless."""
    server = start_temporal(
        free_port(), devstack_dir / "logs" / "temporal-ui.log", ui_port=free_port()
    )
    try:
        yield server
    finally:
        server.stop()


@dataclass
class Company:
    live: LiveStack
    api: Api
    history: History
    temporal: Client
    ui_url: str


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def company(
    chromium: str,
    settings: Settings,
    temporal_ui: TemporalServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Company]:
    """The stack on the UI's Temporal, with six months of billing in a database of its own."""
    assert temporal_ui.ui_url is not None
    client = await Client.connect(temporal_ui.address, data_converter=DATA_CONVERTER)
    base = settings.model_copy(update={"temporal_address": temporal_ui.address})
    tmp = tmp_path_factory.mktemp("browser")
    # Dunning in hours: the declined card's bills stay pending (outstanding) throughout.
    overrides: dict[str, str] = {"dunning_schedule": "1h,1h,1h"}
    if encrypted_payloads():
        # The UI decodes through the API's codec server: admit its origin; loopback only,
        # so no key, as in `make run` (the dev server's UI has no login to pass one).
        overrides |= {"codec_cors_origins": temporal_ui.ui_url, "codec_server_auth": "none"}
    async with journey_stack(base, client, tmp, **overrides) as live:
        api = Api(live.api, live.settings.billing_api_key.get_secret_value())
        history = await asyncio.wait_for(six_months(api), timeout=240)
        yield Company(live, api, history, client, temporal_ui.ui_url)
