"""Outbound events: their types, their JSON body, and Standard Webhooks signatures.

An event is written in the same transaction as the change it describes (`store/outbox.py`)
and delivered at least once to each subscribed endpoint (`workflows/webhook_delivery.py`).
The body is `{id, type, created_at, customer_id, sequence, data}`; `data` never carries a
payment token or a key, whoever built it.
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import Enum, StrEnum
from typing import Any

from pydantic import BaseModel
from standardwebhooks import Webhook

SECRET_PREFIX = "whsec_"
# 32 random bytes: the Standard Webhooks spec asks for 24 to 64.
_SECRET_BYTES = 32
# Keys never sent out, at any depth of `data`: payment tokens, customer keys, secrets.
SECRET_KEYS = frozenset({"token", "api_key", "api_key_hash", "secret", "previous_secret"})


class EventType(StrEnum):
    CUSTOMER_CREATED = "customer.created"
    CUSTOMER_TIER_CHANGED = "customer.tier_changed"
    BILL_CREATED = "bill.created"
    BILL_PAID = "bill.paid"
    BILL_PAYMENT_FAILED = "bill.payment_failed"
    BILL_UNCOLLECTIBLE = "bill.uncollectible"
    BILL_REFUNDED = "bill.refunded"
    REFUND_FAILED = "refund.failed"
    USAGE_LIMIT_WARNING = "usage.limit_warning"
    USAGE_LIMIT_REACHED = "usage.limit_reached"
    RECONCILIATION_DISCREPANCY = "reconciliation.discrepancy"
    WEBHOOK_ENDPOINT_DISABLED = "webhook_endpoint.disabled"


def event_type(value: str) -> EventType:
    """A known type, or ValueError naming the known ones."""
    try:
        return EventType(value)
    except ValueError:
        known = ", ".join(t.value for t in EventType)
        raise ValueError(f"unknown event type {value!r}; known: {known}") from None


def iso_time(value: datetime | date) -> str:
    """ISO 8601 as the API writes it: UTC as `Z`."""
    text = value.isoformat()
    if isinstance(value, datetime) and value.utcoffset() == timedelta(0):
        return text.removesuffix("+00:00") + "Z"
    return text


def _plain(value: Any) -> Any:
    """JSON-ready: money and rates as decimal strings, times as ISO 8601, enums as values."""
    if isinstance(value, BaseModel):
        return _plain(value.model_dump(mode="json"))
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items() if str(k).lower() not in SECRET_KEYS}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    if isinstance(value, Enum):
        return _plain(value.value)
    if isinstance(value, Decimal):
        return f"{value:f}"
    if isinstance(value, datetime | date):
        return iso_time(value)
    if isinstance(value, timedelta):
        return value.total_seconds()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise TypeError(f"an event's data cannot hold a {type(value).__name__}")


def event_data(data: Mapping[str, Any]) -> dict[str, Any]:
    """The `data` an event stores and sends: plain JSON, with every secret key removed."""
    plain: dict[str, Any] = _plain(data)
    return plain


def event_body(
    *,
    event_id: str,
    type: str,
    created_at: datetime,
    customer_id: str | None,
    sequence: int,
    data: Mapping[str, Any],
) -> str:
    """The exact text that is signed and sent; the same for every attempt of an event."""
    body = {
        "id": event_id,
        "type": type,
        "created_at": iso_time(created_at),
        "customer_id": customer_id,
        "sequence": sequence,
        "data": event_data(data),  # again: a row written before this rule never leaks
    }
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False)


def new_secret() -> str:
    """A signing secret as the spec writes it: `whsec_` and base64 of random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(_SECRET_BYTES)).decode()


def is_secret(value: str) -> bool:
    if not value.startswith(SECRET_PREFIX):
        return False
    try:
        return len(base64.b64decode(value[len(SECRET_PREFIX) :], validate=True)) >= 24
    except ValueError:
        return False


def signature_headers(
    *, event_id: str, timestamp: datetime, body: str, signing_secrets: list[str]
) -> dict[str, str]:
    """`webhook-id`, `webhook-timestamp`, `webhook-signature` (one `v1,` per secret).

    During a rotation's overlap both the new and the previous secret sign, so a receiver
    holding either verifies.
    """
    if not signing_secrets:
        raise ValueError("at least one signing secret is needed")
    signatures = [Webhook(secret).sign(event_id, timestamp, body) for secret in signing_secrets]
    return {
        "webhook-id": event_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": " ".join(signatures),
    }
