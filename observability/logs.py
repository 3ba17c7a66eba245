"""Structured logs: one JSON object per line, with the ids of the money flow, never a secret.

`workflow_id`, `customer_id` and `bill_id` come from context variables bound by the API
(path parameters) and by the worker (each activity's input), and from the Temporal
SDK's own `temporal_workflow` / `temporal_activity` extras; every line passes the
`RedactingFilter` before it is written.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

import temporalio.activity
import temporalio.workflow

from config.settings import Settings
from observability.redact import Redactor

CONTEXT_FIELDS = ("workflow_id", "customer_id", "bill_id")
_EMPTY: Mapping[str, str] = MappingProxyType({})
_context: ContextVar[Mapping[str, str]] = ContextVar("billing_log_context", default=_EMPTY)
# Attributes every LogRecord has; anything else on a record is an `extra` worth keeping.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}
# uvicorn's copy of the message with terminal colours; the SDK core's raw log entry object.
_STANDARD |= {"color_message", "temporal_log"}
_TEMPORAL_EXTRAS = ("temporal_workflow", "temporal_activity")


def current_context() -> Mapping[str, str]:
    return _context.get()


def bind(**fields: str | None) -> None:
    """Add ids to the context of this task (a request, an activity) and what it awaits."""
    values = {key: value for key, value in fields.items() if value}
    if values:
        _context.set({**_context.get(), **values})


@contextmanager
def bound(**fields: str | None) -> Iterator[None]:
    token = _context.set(dict(_context.get()))
    bind(**fields)
    try:
        yield
    finally:
        _context.reset(token)


def _temporal_ids(record: logging.LogRecord) -> dict[str, str]:
    for name in _TEMPORAL_EXTRAS:
        info = getattr(record, name, None)
        if isinstance(info, dict):
            picked = ("workflow_id", "run_id", "workflow_type", "activity_type", "attempt")
            return {key: str(info[key]) for key in picked if info.get(key) is not None}
    return {}


class JsonFormatter(logging.Formatter):
    """ts, level, logger, message, service, the context ids, extras, and `exc` if any."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "service": self.service,
        }
        line.update(_temporal_ids(record))
        line.update(getattr(record, "log_context", None) or _context.get())
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in _TEMPORAL_EXTRAS and key != "log_context":
                line.setdefault(key, value)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exc"] = record.exc_text
        if record.stack_info:
            line["stack"] = record.stack_info
        return json.dumps(line, default=str, ensure_ascii=False)


class RedactingFilter(logging.Filter):
    """Masks secrets in the message, the traceback and string extras; keeps every record."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self.redactor(record.getMessage())
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redactor(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redactor(record.stack_info)
        for key, value in list(vars(record).items()):
            if key not in _STANDARD and isinstance(value, str):
                setattr(record, key, self.redactor(value))
        # Freeze the ids now: a handler on another thread would not see this task's context.
        record.log_context = dict(_context.get())
        return True


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever `sys.stderr` is at emit time (test runners swap it)."""

    billing = True

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def secrets_of(settings: Settings) -> list[str]:
    values = [
        settings.billing_api_key,
        settings.gateway_webhook_secret,
        settings.payload_codec_key,
        settings.payload_codec_retired_keys,
        settings.metrics_token,
    ]
    return [v.get_secret_value() for v in values]


def configure_logging(settings: Settings, service: str) -> logging.Handler:
    """Route every logger (uvicorn's and Temporal's too) to one redacted stderr handler."""
    root = logging.getLogger()
    for old in list(root.handlers):
        # Ours from an earlier call, or basicConfig's; a test runner's handlers stay.
        if getattr(old, "billing", False) or type(old) is logging.StreamHandler:
            root.removeHandler(old)
    handler = _StderrHandler()
    if settings.log_format == "json":
        handler.setFormatter(JsonFormatter(service))
        # The JSON line carries the workflow/activity info; the SDK need not append it.
        temporalio.workflow.logger.workflow_info_on_message = False
        temporalio.activity.logger.activity_info_on_message = False
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    handler.addFilter(RedactingFilter(Redactor(secrets_of(settings))))
    root.addHandler(handler)
    root.setLevel(settings.log_level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    logging.captureWarnings(True)
    return handler
