"""Usage bodies decoded from the raw request by msgspec Structs, checked as the domain's
`UsageEventIn` checks them; the OpenAPI still shows the pydantic models' schemas
(api/schemas.py), which tests/unit/test_openapi.py holds to the Structs' constraints. They
also state what is checked outside the Structs, to keep the hot path free of per-event
regex calls: the `event_id` pattern (once per batch, below) and no NUL in `customer_id`
(Postgres refuses it).

A body that is not JSON is a 400; one that breaks a rule is a 422 naming the field
(`events.3.quantity: ...`). Both go through FastAPI's RequestValidationError, so the one
exception-handler module (api/errors.py) answers them as it answers every other route.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel

from api.schemas import MAX_BATCH
from billing.catalog import UsageKind
from billing.metering import MAX_QUANTITY

# Checked once over all of a batch's ids, not by msgspec per event (a Python regex call each,
# ~0.4 us an event): the ids joined by newlines, which no id may hold, match as one string.
_EVENT_ID = "[A-Za-z0-9_.:-]+"
_EVENT_IDS = re.compile(f"{_EVENT_ID}(?:\n{_EVENT_ID})*")
_ONE_ID = re.compile(_EVENT_ID)
_AT = re.compile(r" - at `\$(.*)`$")
_STEP = re.compile(r"\.([^.\[]+)|\[(\d+)\]")


class EventIn(msgspec.Struct, forbid_unknown_fields=True, frozen=True, gc=False):
    """One usage event; the same rules as billing.metering.UsageEventIn."""

    event_id: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]  # and _EVENT_ID
    customer_id: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
    kind: UsageKind
    # msgspec is strict: true, 1.0 and "1" are not integers.
    quantity: Annotated[int, msgspec.Meta(gt=0, le=MAX_QUANTITY)]
    occurred_at: Annotated[datetime, msgspec.Meta(tz=True)] | None = None

    def utc_occurred_at(self) -> datetime | None:
        at = self.occurred_at
        return at if at is None or at.tzinfo is UTC else at.astimezone(UTC)


class BatchIn(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    events: Annotated[list[EventIn], msgspec.Meta(min_length=1, max_length=MAX_BATCH)]


_EVENT = msgspec.json.Decoder(EventIn)
_BATCH = msgspec.json.Decoder(BatchIn)


def _not_json() -> RequestValidationError:
    return RequestValidationError([{"type": "json_invalid", "loc": ("body",), "msg": "not JSON"}])


def _invalid(exc: msgspec.ValidationError) -> RequestValidationError:
    text = str(exc)
    found = _AT.search(text)
    loc: list[str | int] = ["body"]
    if found is not None:
        text = text[: found.start()]
        loc += [int(i) if i else name for name, i in _STEP.findall(found.group(1))]
    return RequestValidationError([{"type": "value_error", "loc": tuple(loc), "msg": text}])


def _decode(decoder: msgspec.json.Decoder[Any], body: bytes, content_type: str | None) -> Any:
    # As FastAPI: no Content-Type is read as JSON; another media type than JSON is not.
    if content_type and "json" not in content_type.lower():
        raise _not_json()
    try:
        return decoder.decode(body)
    except msgspec.ValidationError as exc:
        raise _invalid(exc) from None
    except msgspec.DecodeError:
        raise _not_json() from None


def _check_ids(events: list[EventIn], loc: tuple[str, ...]) -> None:
    joined = "\n".join(e.event_id for e in events)
    # The count, too: an id holding a newline would otherwise pass as two good ones.
    if joined.count("\n") == len(events) - 1 and _EVENT_IDS.fullmatch(joined) is not None:
        return
    for index, event in enumerate(events):
        if _ONE_ID.fullmatch(event.event_id) is None:
            where = (*loc, index, "event_id") if loc else ("body", "event_id")
            message = f"Expected `str` matching regex '^{_EVENT_ID}$'"
            raise RequestValidationError([{"type": "value_error", "loc": where, "msg": message}])


def decode_event(body: bytes, content_type: str | None) -> EventIn:
    event: EventIn = _decode(_EVENT, body, content_type)
    _check_ids([event], ())
    return event


def decode_batch(body: bytes, content_type: str | None) -> list[EventIn]:
    batch: BatchIn = _decode(_BATCH, body, content_type)
    _check_ids(batch.events, ("body", "events"))
    return batch.events


def openapi_body(model: type[BaseModel]) -> dict[str, Any]:
    """`openapi_extra` that documents a raw-request route's body as `model`, inline."""
    schema = model.model_json_schema()
    defs = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return inline(defs[ref.removeprefix("#/$defs/")])
            return {k: inline(v) for k, v in node.items()}
        if isinstance(node, list):
            return [inline(v) for v in node]
        return node

    content = {"application/json": {"schema": inline(schema)}}
    return {"requestBody": {"content": content, "required": True}}
