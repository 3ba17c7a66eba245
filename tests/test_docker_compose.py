"""docker-compose.yml agrees with the settings, the dev stack and the Dockerfile (no Docker)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml  # type: ignore[import-untyped]  # PyYAML ships no stubs; mypy is relaxed here

from config.settings import Settings
from devstack.temporal_server import SEARCH_ATTRIBUTES

ROOT = Path(__file__).resolve().parent.parent
COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
# The services that run this repository's code, built from its Dockerfile.
OURS = {name: svc for name, svc in SERVICES.items() if "build" in svc}
FIELDS = {name.upper() for name in Settings.model_fields}
DEFAULTS = Settings.model_construct()


def _env(service: str) -> dict[str, str]:
    return {key: str(value) for key, value in SERVICES[service].get("environment", {}).items()}


def _published(service: str) -> dict[int, int]:
    """Host port -> container port."""
    pairs = (str(p).split(":") for p in SERVICES[service].get("ports", []))
    return {int(host): int(container) for host, container in pairs}


def test_every_part_of_the_stack_is_there() -> None:
    expected = {"temporal", "temporal-postgresql", "temporal-ui", "postgres", "redis"}
    expected |= {"worker", "api", "gateway", "migrate"}
    assert expected <= set(SERVICES)
    assert {"worker", "api", "gateway", "migrate"} <= set(OURS)
    assert SERVICES["temporal"]["image"].startswith("temporalio/auto-setup:")
    assert SERVICES["temporal"]["environment"]["DB"] == "postgres12"


@pytest.mark.parametrize("service", sorted(OURS))
def test_our_environment_names_are_settings_fields(service: str) -> None:
    env = _env(service)
    assert env, f"{service} sets no environment"
    assert set(env) - FIELDS == set(), "names Settings does not read"


@pytest.mark.parametrize("service", sorted(OURS))
def test_our_environment_values_are_valid_settings(service: str) -> None:
    values = {key.lower(): value for key, value in _env(service).items()}
    settings = Settings.model_validate(values)  # the values alone, not this machine's env
    assert settings.temporal_address == "temporal:7233"


def test_ports_agree_with_the_settings_and_make_run() -> None:
    assert _published("api") == {8000: DEFAULTS.api_port}
    assert _published("gateway") == {8001: DEFAULTS.gateway_port}
    assert int(_env("gateway")["GATEWAY_PORT"]) == DEFAULTS.gateway_port
    assert _published("temporal-ui") == {8233: 8080}
    assert _published("temporal") == {7233: 7233}
    # Never the host's own Postgres or Redis ports.
    assert _published("postgres") == {15432: 5432}
    assert _published("redis") == {16379: 6379}
    api_command = " ".join(SERVICES["api"]["command"])
    assert f"--port {DEFAULTS.api_port}" in api_command


def test_urls_name_services_of_this_file() -> None:
    env = _env("api")
    assert urlsplit(env["DATABASE_URL"]).hostname == "postgres"
    assert urlsplit(env["REDIS_URL"]).hostname == "redis"
    assert env["TEMPORAL_ADDRESS"] == "temporal:7233"
    gateway = urlsplit(env["GATEWAY_URL"])
    assert (gateway.hostname, gateway.port) == ("gateway", int(_env("gateway")["GATEWAY_PORT"]))
    webhook = urlsplit(env["GATEWAY_WEBHOOK_URL"])
    assert (webhook.hostname, webhook.port, webhook.path) == (
        "api",
        DEFAULTS.api_port,
        urlsplit(DEFAULTS.gateway_webhook_url).path,
    )
    database = urlsplit(env["DATABASE_URL"])
    pg = SERVICES["postgres"]["environment"]
    assert (database.username, database.password) == (pg["POSTGRES_USER"], pg["POSTGRES_PASSWORD"])
    assert database.path == f"/{pg['POSTGRES_DB']}"


def test_dependencies_wait_for_health() -> None:
    for name, service in SERVICES.items():
        depends = service.get("depends_on", {})
        assert isinstance(depends, dict), f"{name}: depends_on needs conditions"
        for target, rule in depends.items():
            condition = rule["condition"]
            assert condition in {"service_healthy", "service_completed_successfully"}, name
            if condition == "service_healthy":
                assert "healthcheck" in SERVICES[target], f"{name} waits on {target}: no check"
            else:
                assert SERVICES[target].get("restart") == "no", f"{target} is a one-shot"
    for name in ("worker", "api", "gateway", "temporal", "temporal-ui", "postgres", "redis"):
        assert "healthcheck" in SERVICES[name], name
    assert SERVICES["worker"]["depends_on"]["migrate"]["condition"] == (
        "service_completed_successfully"
    )


def test_search_attributes_match_the_dev_stack() -> None:
    script = " ".join(SERVICES["temporal-search-attributes"]["command"])
    names = re.search(r"for name in ([A-Za-z ]+?); do", script)
    assert names is not None
    assert set(names.group(1).split()) == set(SEARCH_ATTRIBUTES)
    assert set(SEARCH_ATTRIBUTES.values()) == {"Keyword"}
    assert "--type Keyword" in script


def test_dockerfile_copies_every_package() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    copied = set(re.findall(r"^COPY (\S+) ", dockerfile, flags=re.MULTILINE))
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = {p.rstrip("*") for p in patterns if (ROOT / p.rstrip("*")).is_dir()}
    assert packages | {"migrations", "worker.py"} <= copied
