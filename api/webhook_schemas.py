"""Request and answer bodies of the webhook endpoint and event routes.

The schema states each rule (tests/unit/test_openapi.py). `url` is checked by
billing.outbound.check_url; its pattern is the http(s) URL with a host, no credentials, no
fragment and a port in 1-65535 that it accepts (a subset: IPv6 literals and hosts outside
ASCII pass the check too). Not statable: private and loopback addresses are refused unless
WEBHOOKS_REACH_PRIVATE. `overlap`'s pattern is a subset of what parse_duration reads that
is never above 7d.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from api.schemas import Body, stated
from billing.durations import parse_duration
from billing.events import EventType

MAX_OVERLAP = timedelta(days=7)
_NO_NUL = r"^[^\x00]*$"
_PORT = "[1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]"
URL_PATTERN = rf"^https?://[A-Za-z0-9._~%!$&'()*+,;=-]+(:({_PORT}))?([/?][^#\s\x00]*)?$"
OVERLAP_PATTERN = r"^(0|[0-9]{1,8}ms|[0-9]{1,5}s|[0-9]{1,4}m|[0-9]{1,2}h|[0-7]d)$"
_URL = stated(pattern=URL_PATTERN)


def _distinct(events: list[EventType]) -> list[EventType]:
    if len(set(events)) != len(events):
        raise ValueError("lists an event type twice")
    return events


EventTypes = Annotated[
    list[EventType], AfterValidator(_distinct), Field(json_schema_extra={"uniqueItems": True})
]


class EndpointCreate(Body):
    url: str = Field(
        min_length=1,
        max_length=2048,
        examples=["https://example.com/hooks"],
        json_schema_extra=_URL,
    )
    events: EventTypes = Field(
        default=[], max_length=len(EventType), description="The types sent; empty: every type"
    )
    description: str = Field(default="", max_length=500, pattern=_NO_NUL)


class EndpointUpdate(Body):
    """At least one field: an empty change is refused."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"minProperties": 1})

    url: str | None = Field(default=None, min_length=1, max_length=2048, json_schema_extra=_URL)
    events: EventTypes | None = Field(default=None, max_length=len(EventType))
    description: str | None = Field(default=None, max_length=500, pattern=_NO_NUL)
    enabled: bool | None = None


class RotateSecret(Body):
    overlap: str = Field(
        default="24h",
        examples=["24h"],
        description="How long the previous secret keeps signing too (at most 7d; 0s: none)",
        json_schema_extra=stated(pattern=OVERLAP_PATTERN),
    )

    @field_validator("overlap")
    @classmethod
    def _overlap(cls, value: str) -> str:
        if value.strip() in ("0", "0s"):
            return "0s"
        try:
            overlap = parse_duration(value)
        except OverflowError:  # a number of days no timedelta holds
            raise ValueError("at most 7d") from None
        if overlap > MAX_OVERLAP:
            raise ValueError("at most 7d")
        return value


class EndpointOut(BaseModel):
    id: str
    url: str
    description: str
    events: list[str] = Field(description="Empty: every type")
    enabled: bool
    disabled_reason: str | None
    previous_secret_expires_at: datetime | None = Field(
        description="Until then the previous secret signs too (after a rotation)"
    )
    created_at: datetime
    updated_at: datetime


class EndpointCreated(EndpointOut):
    secret: str = Field(description="The signing secret (whsec_...): shown this once")


class EndpointPage(BaseModel):
    endpoints: list[EndpointOut]
    next_after: str | None


class SecretRotated(BaseModel):
    id: str
    secret: str = Field(description="The new signing secret: shown this once")
    previous_secret_expires_at: datetime | None


class DeliveryAttemptOut(BaseModel):
    id: str
    event_id: str
    event_type: str
    workflow_id: str
    attempt: int
    status_code: int | None
    latency_ms: int | None
    error: str | None
    next_try_at: datetime | None = Field(description="When the next attempt is due, if any")
    delivered: bool
    created_at: datetime


class DeliveryPage(BaseModel):
    deliveries: list[DeliveryAttemptOut]
    next_after: str | None


class EventOut(BaseModel):
    id: str
    type: str
    created_at: datetime
    customer_id: str | None
    sequence: int = Field(description="Per customer, from 1, without gaps: order by it")
    data: dict[str, Any]


class DeliveryStateOut(BaseModel):
    endpoint_id: str
    workflow_id: str
    status: str = Field(description="pending, delivered, failed or cancelled")
    attempts: int
    last_status_code: int | None
    next_try_at: datetime | None
    updated_at: datetime


class EventDetail(EventOut):
    deliveries: list[DeliveryStateOut]


class EventPage(BaseModel):
    events: list[EventOut]
    next_after: str | None


class RedeliverBody(Body):
    endpoint_id: str | None = Field(
        default=None,
        max_length=64,
        description="One endpoint; default: every one subscribed",
        json_schema_extra=stated(pattern=_NO_NUL),
    )


class Redelivery(BaseModel):
    event_id: str
    workflow_ids: list[str]
    status: str = "started"
