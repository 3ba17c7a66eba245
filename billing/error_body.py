"""The JSON of every refusal, `{"error": {"code": ..., "message": ...}}`: a `BillingError`'s
`code` and `message` (or FastAPI's own validation errors, mapped to the same codes).

Here, below every HTTP server of the service (the API and the codec server in
`observability`), so each can document its refusals by the one model. The HTTP status of
each error is chosen in `api/errors.py`, not here.
"""

from __future__ import annotations

from pydantic import BaseModel, Field


class ErrorDetail(BaseModel):
    code: str = Field(examples=["invalid_input"])
    message: str


class ErrorBody(BaseModel):
    """Every refusal, FastAPI's own validation errors included."""

    error: ErrorDetail
