"""Gateway webhook signatures, Stripe style, and the event the gateway sends.

Header `Gateway-Signature: t=<unix seconds>,v1=<hex hmac_sha256(secret, f"{t}.{raw_body}")>`.
A body is trusted only if one `v1` matches (constant-time) and `t` is within the tolerance,
so a captured request cannot be replayed later.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Literal

from pydantic import BaseModel

from billing.errors import Unauthenticated
from billing.payments import ChargeOutcome

SIGNATURE_HEADER = "Gateway-Signature"
CHARGE_SETTLED = "charge.settled"
CHARGE_FAILED = "charge.failed"


class ChargeEventData(ChargeOutcome, frozen=True):
    """The charge as settled, with the key and metadata that lead back to the saga."""

    idempotency_key: str
    metadata: dict[str, str] = {}


class GatewayEvent(BaseModel, frozen=True):
    """A webhook body; `id` is stable across delivery retries, so receivers dedupe on it."""

    id: str
    type: Literal["charge.settled", "charge.failed"]
    created: int
    data: ChargeEventData


def _digest(secret: str, body: bytes, timestamp: int) -> str:
    signed = f"{timestamp}.".encode() + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The `Gateway-Signature` header value for this exact body at this instant."""
    return f"t={timestamp},v1={_digest(secret, body, timestamp)}"


def _parse(header: str) -> tuple[int, list[str]]:
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep or not value:
            raise Unauthenticated(f"malformed {SIGNATURE_HEADER} header")
        if key == "t":
            if not (value.isascii() and value.isdigit()):
                raise Unauthenticated(f"malformed {SIGNATURE_HEADER} timestamp")
            timestamp = int(value)
        elif key == "v1":
            signatures.append(value)
        # Other schemes (v0, future ones) are ignored, as Stripe does.
    if timestamp is None or not signatures:
        raise Unauthenticated(f"malformed {SIGNATURE_HEADER} header: needs t= and v1=")
    return timestamp, signatures


def verify(secret: str, body: bytes, header: str | None, now: int, tolerance_s: int) -> None:
    """Raise Unauthenticated unless a v1 signature matches and `t` is within tolerance of now."""
    if header is None or not header.strip():
        raise Unauthenticated(f"missing {SIGNATURE_HEADER} header")
    timestamp, signatures = _parse(header)
    expected = _digest(secret, body, timestamp)
    # Check every candidate so timing does not reveal which one matched.
    matched = False
    for candidate in signatures:
        matched |= hmac.compare_digest(expected.encode(), candidate.encode())
    if not matched:
        raise Unauthenticated("webhook signature does not match the body")
    if abs(now - timestamp) > tolerance_s:
        raise Unauthenticated(
            f"webhook timestamp outside the {tolerance_s}s tolerance (possible replay)"
        )
