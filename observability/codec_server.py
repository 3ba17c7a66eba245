"""The codec server the Temporal Web UI and CLI call to show encrypted payloads in clear.

`POST /codec/decode` and `POST /codec/encode` take and answer `{"payloads": [...]}`, the
protobuf JSON of `temporalio.api.common.v1.Payloads` (bytes as base64), as in Temporal's
codec server contract. CORS admits only the Web UI's origins, with the `X-Namespace`,
`Content-Type` and `Authorization` headers the UI sends.

Authorization: with `CODEC_SERVER_AUTH=service_key` (the default outside dev) a request
needs `Authorization: Bearer <BILLING_API_KEY>` (the CLI's `--codec-auth`). In dev the
API listens on 127.0.0.1 only, and the dev server's Web UI has no login to pass a token
from, so loopback is the guard there, as Temporal's docs allow.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Sequence
from typing import Annotated

from fastapi import APIRouter, FastAPI, Header
from google.protobuf import json_format
from pydantic import BaseModel, StringConstraints
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send
from temporalio.api.common.v1 import Payload, Payloads

from api.schemas import ERRORS
from billing.errors import InvalidInput, Unauthenticated
from config.settings import Settings
from observability.codec import EncryptionCodec, PayloadDecryptError

PREFIX = "/codec"
UI_HEADERS = ["Content-Type", "X-Namespace", "Authorization"]

Transform = Callable[[Sequence[Payload]], Awaitable[list[Payload]]]
# Module level: FastAPI resolves the string annotations against the module's names.
Auth = Annotated[str | None, Header()]
Base64 = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9+/]*={0,2}$")]
_ANSWERS: dict[int | str, dict[str, object]] = {s: ERRORS[s] for s in (400, 401, 422)}


class PayloadJSON(BaseModel):
    """One `temporal.api.common.v1.Payload` in protobuf JSON: bytes as base64."""

    metadata: dict[str, Base64] = {}
    data: Base64 = ""


class PayloadsJSON(BaseModel):
    payloads: list[PayloadJSON]


def _authorize(settings: Settings, authorization: str | None) -> None:
    if not settings.codec_auth_required:
        return
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthenticated("the codec server wants `Authorization: Bearer <service key>`")
    service_key = settings.billing_api_key.get_secret_value()
    if not hmac.compare_digest(token.strip().encode(), service_key.encode()):
        raise Unauthenticated("only the service key may use the codec server")


async def _apply(transform: Transform, body: PayloadsJSON) -> PayloadsJSON:
    try:
        payloads = json_format.ParseDict(body.model_dump(), Payloads())
    except json_format.ParseError as exc:
        raise InvalidInput("payloads: metadata values and data are base64") from exc
    try:
        result = Payloads(payloads=await transform(payloads.payloads))
    except PayloadDecryptError as exc:
        raise InvalidInput(str(exc)) from exc
    return PayloadsJSON.model_validate(
        json_format.MessageToDict(result, always_print_fields_with_no_presence=True)
    )


def codec_router(settings: Settings, codec: EncryptionCodec) -> APIRouter:
    router = APIRouter(prefix=PREFIX, tags=["codec"], responses=_ANSWERS)

    @router.post("/decode", summary="Decrypt payloads for the Temporal Web UI and CLI")
    async def decode(body: PayloadsJSON, authorization: Auth = None) -> PayloadsJSON:
        _authorize(settings, authorization)
        return await _apply(codec.decode, body)

    @router.post("/encode", summary="Encrypt payloads sent from the Temporal Web UI and CLI")
    async def encode(body: PayloadsJSON, authorization: Auth = None) -> PayloadsJSON:
        _authorize(settings, authorization)
        return await _apply(codec.encode, body)

    return router


class _CodecCORS:
    """CORS for the codec paths only: the rest of the API stays same-origin."""

    def __init__(self, app: ASGIApp, origins: list[str]) -> None:
        self.app = app
        self.cors = CORSMiddleware(
            app,
            allow_origins=origins,
            allow_methods=["POST", "OPTIONS"],
            allow_headers=UI_HEADERS,
            allow_credentials=True,  # the UI's "Include cross-origin credentials"
            allow_private_network=True,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(PREFIX + "/"):
            await self.cors(scope, receive, send)
        else:
            await self.app(scope, receive, send)


def install_codec_server(app: FastAPI, settings: Settings) -> None:
    """Serve /codec/encode and /codec/decode with the key of this service's workers."""
    app.include_router(codec_router(settings, EncryptionCodec.from_settings(settings)))
    origins = [o.strip() for o in settings.codec_cors_origins.split(",") if o.strip()]
    app.add_middleware(_CodecCORS, origins=origins)
