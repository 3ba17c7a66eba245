"""Prometheus and Grafana under the `observability` compose profile (no Docker needed).

The dashboard may only ask for series the service really exports, and Prometheus
scrapes the ports the settings give the API and the worker.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from config.settings import Settings
from observability.metrics import REGISTRY

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "observability" / "deploy"
COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
DEFAULTS = Settings.model_construct()
DASHBOARD = json.loads((DEPLOY / "grafana" / "billing.json").read_text())


def exported_names() -> set[str]:
    """Every sample name the service registry can expose (`_total`, `_bucket`, ...)."""
    names = set()
    for family in REGISTRY.collect():
        names.add(family.name)
        if family.type == "counter":
            names.add(family.name + "_total")
        if family.type == "histogram":
            names |= {family.name + s for s in ("_bucket", "_sum", "_count")}
    return names


def test_prometheus_and_grafana_are_an_optional_profile():
    for name in ("prometheus", "grafana"):
        assert SERVICES[name]["profiles"] == ["observability"]
    # The default `docker compose up` starts neither.
    assert all(
        "profiles" not in s for n, s in SERVICES.items() if n not in ("prometheus", "grafana")
    )
    for name in ("prometheus", "grafana"):
        for volume in SERVICES[name]["volumes"]:
            host = volume.split(":")[0]
            if host.startswith("./"):
                assert (ROOT / host).is_file(), host


def test_prometheus_scrapes_the_api_and_the_worker_where_they_listen():
    config = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    targets = {
        job["job_name"]: job["static_configs"][0]["targets"] for job in config["scrape_configs"]
    }
    assert targets["billing-api"] == [f"api:{DEFAULTS.api_port}"]
    assert targets["billing-worker"] == [f"worker:{DEFAULTS.worker_metrics_port}"]
    worker_env = SERVICES["worker"]["environment"]
    assert worker_env["METRICS_HOST"] == "0.0.0.0"  # reachable from the prometheus container
    assert int(worker_env["WORKER_METRICS_PORT"]) == DEFAULTS.worker_metrics_port


def test_the_web_ui_decodes_through_the_api_codec_server():
    ui = SERVICES["temporal-ui"]["environment"]
    assert ui["TEMPORAL_CODEC_ENDPOINT"] == f"http://localhost:{DEFAULTS.api_port}/codec"
    origins = DEFAULTS.codec_cors_origins.split(",")
    assert ui["TEMPORAL_CORS_ORIGINS"] in origins


def test_the_dashboard_shows_revenue_and_charges_from_exported_series():
    exprs = [t["expr"] for p in DASHBOARD["panels"] for t in p["targets"]]
    titles = " ".join(p["title"] for p in DASHBOARD["panels"]).lower()
    assert "revenue" in titles
    assert "charges" in titles
    used = {name for e in exprs for name in re.findall(r"\bbilling_[a-z_]+\b", e)}
    assert used, "the dashboard reads no billing series"
    assert used <= exported_names(), used - exported_names()
    assert "billing_revenue_collected_minor_units_total" in used
    assert "billing_charges_total" in used
    assert any(name.startswith("temporal_") for e in exprs for name in re.findall(r"\w+", e))
    for panel in DASHBOARD["panels"]:
        assert panel["datasource"]["uid"] == "prometheus"
    datasources = yaml.safe_load((DEPLOY / "grafana" / "datasources.yml").read_text())
    assert datasources["datasources"][0]["uid"] == "prometheus"
