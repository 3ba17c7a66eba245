"""The worker's `/metrics`: the service's counters and the Temporal SDK's runtime telemetry.

The SDK (Rust core) serves its own Prometheus endpoint on TEMPORAL_SDK_METRICS_PORT; the
worker's endpoint on WORKER_METRICS_PORT answers with the service registry followed by
the SDK's text, so one scrape target holds both (their names never collide: `billing_*`
and `temporal_*`). The SDK's own logs are forwarded into Python logging, so they leave
the process as the same redacted JSON lines as everything else.
"""

from __future__ import annotations

import logging
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from temporalio.runtime import (
    LogForwardingConfig,
    LoggingConfig,
    PrometheusConfig,
    Runtime,
    TelemetryConfig,
    TelemetryFilter,
)

from config.settings import Settings
from observability.metrics import REGISTRY

log = logging.getLogger("observability.metrics")
_SDK_SCRAPE_TIMEOUT_S = 2.0


def _forwarded_logs() -> LoggingConfig:
    return LoggingConfig(
        filter=TelemetryFilter(core_level="WARN", other_level="ERROR"),
        forwarding=LogForwardingConfig(logger=logging.getLogger("temporalio.core")),
    )


def sdk_runtime(settings: Settings) -> Runtime:
    """The worker's Temporal runtime: Prometheus on the SDK port (unless 0), logs forwarded."""
    metrics = None
    if settings.temporal_sdk_metrics_port:
        metrics = PrometheusConfig(
            bind_address=f"{settings.metrics_host}:{settings.temporal_sdk_metrics_port}",
            counters_total_suffix=True,
            durations_as_seconds=True,
        )
    telemetry = TelemetryConfig(
        logging=_forwarded_logs(), metrics=metrics, global_tags={"service": "billing-worker"}
    )
    return Runtime(telemetry=telemetry)


_logging_runtime: Runtime | None = None


def logging_runtime() -> Runtime:
    """One runtime per process for clients that only need the SDK's logs forwarded."""
    global _logging_runtime
    if _logging_runtime is None:
        _logging_runtime = Runtime(telemetry=TelemetryConfig(logging=_forwarded_logs()))
    return _logging_runtime


def exposition(sdk_url: str | None) -> bytes:
    """The service registry, then the SDK's series (or a comment saying why they are missing)."""
    text = generate_latest(REGISTRY)
    if sdk_url is None:
        return text
    try:
        with urllib.request.urlopen(sdk_url, timeout=_SDK_SCRAPE_TIMEOUT_S) as response:
            sdk: bytes = response.read()
    except (urllib.error.URLError, OSError) as exc:
        return text + f"# temporal SDK metrics unavailable: {exc}\n".encode()
    return text + sdk


def serve_worker_metrics(settings: Settings) -> ThreadingHTTPServer | None:
    """Serve GET /metrics on WORKER_METRICS_PORT in a daemon thread; None when the port is 0."""
    if not settings.worker_metrics_port:
        return None
    sdk_port = settings.temporal_sdk_metrics_port
    sdk_url = f"http://{settings.metrics_host}:{sdk_port}/metrics" if sdk_port else None

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?")[0] != "/metrics":
                self.send_error(404)
                return
            body = exposition(sdk_url)
            self.send_response(200)
            self.send_header("Content-Type", CONTENT_TYPE_LATEST)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass  # a scrape every 15 s is not news

    server = ThreadingHTTPServer((settings.metrics_host, settings.worker_metrics_port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="worker-metrics", daemon=True).start()
    log.info("worker metrics on http://%s:%d/metrics", *server.server_address[:2])
    return server
