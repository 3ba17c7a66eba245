"""The codec server as the Web UI calls it: CORS from :8233, the payloads JSON, auth."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads

from api.app import create_app
from config.settings import Settings
from observability.codec import ENCODING, EncryptionCodec

UI = "http://localhost:8233"
SERVICE_KEY = "sk_test_codec_server_key"


def ui_json(payloads: list[Payload]) -> dict[str, Any]:
    """What the Web UI posts: protobuf JSON of Payloads, bytes as base64."""
    return json_format.MessageToDict(Payloads(payloads=payloads))


def from_json(body: dict[str, Any]) -> list[Payload]:
    return list(json_format.ParseDict(body, Payloads()).payloads)


async def client_for(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(settings))  # no lifespan: no servers
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as c:
        yield c


@pytest.fixture
async def guarded() -> AsyncIterator[httpx.AsyncClient]:
    """Outside dev (`auto`), the codec server wants the service key."""
    async for c in client_for(Settings(environment="test", billing_api_key=SERVICE_KEY)):
        yield c


@pytest.fixture
async def dev() -> AsyncIterator[httpx.AsyncClient]:
    async for c in client_for(Settings(environment="dev")):
        yield c


def sealed(text: str, settings: Settings | None = None) -> Payload:
    codec = EncryptionCodec.from_settings(settings or Settings())
    return codec.encrypt(Payload(metadata={"encoding": b"json/plain"}, data=text.encode()))


HEADERS = {"Origin": UI, "X-Namespace": "default", "Content-Type": "application/json"}


async def test_the_browser_preflight_from_the_web_ui_is_allowed(dev: httpx.AsyncClient):
    for origin in (UI, "http://127.0.0.1:8233"):
        answer = await dev.options(
            "/codec/decode",
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type,x-namespace,authorization",
            },
        )
        assert answer.status_code == 200
        assert answer.headers["access-control-allow-origin"] == origin
        assert answer.headers["access-control-allow-credentials"] == "true"
        allowed = answer.headers["access-control-allow-headers"].lower()
        assert {"content-type", "x-namespace", "authorization"} <= set(allowed.split(", "))
        assert "POST" in answer.headers["access-control-allow-methods"]


async def test_other_origins_and_other_routes_get_no_cors(dev: httpx.AsyncClient):
    answer = await dev.options(
        "/codec/decode",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert answer.status_code == 400
    assert "access-control-allow-origin" not in answer.headers
    # The rest of the API stays same-origin: the UI's origin gets no CORS answer there.
    other = await dev.get("/openapi.json", headers={"Origin": UI})
    assert "access-control-allow-origin" not in other.headers
    # In the OpenAPI document, with the contract's body.
    assert {"/codec/decode", "/codec/encode"} <= set(other.json()["paths"])


async def test_in_dev_the_web_ui_decodes_without_a_token(dev: httpx.AsyncClient):
    body = ui_json([sealed('{"reason": "ada@example.com"}')])
    answer = await dev.post("/codec/decode", json=body, headers=HEADERS)
    assert answer.status_code == 200, answer.text
    assert answer.headers["access-control-allow-origin"] == UI
    [payload] = from_json(answer.json())
    assert json.loads(payload.data) == {"reason": "ada@example.com"}
    assert payload.metadata["encoding"] == b"json/plain"
    # What the Web UI then reads: base64 fields in the JSON answer.
    assert base64.b64decode(answer.json()["payloads"][0]["metadata"]["encoding"]) == b"json/plain"


async def test_encode_then_decode_round_trips(dev: httpx.AsyncClient):
    text = Payload(metadata={"encoding": b"json/plain"}, data=b'"from the UI"')
    encoded = await dev.post("/codec/encode", json=ui_json([text]), headers=HEADERS)
    assert encoded.status_code == 200
    [sealed_payload] = from_json(encoded.json())
    assert sealed_payload.metadata["encoding"] == ENCODING
    decoded = await dev.post("/codec/decode", json=encoded.json(), headers=HEADERS)
    assert from_json(decoded.json()) == [text]


async def test_outside_dev_only_the_service_key_decodes(guarded: httpx.AsyncClient):
    settings = Settings(environment="test", billing_api_key=SERVICE_KEY)
    body = ui_json([sealed('"secret"', settings)])
    missing = await guarded.post("/codec/decode", json=body, headers=HEADERS)
    assert missing.status_code == 401
    assert missing.json()["error"]["code"] == "unauthenticated"
    assert missing.headers["access-control-allow-origin"] == UI  # the UI can show the error
    customer_key = {**HEADERS, "Authorization": "Bearer ck_some_customer_key"}
    assert (await guarded.post("/codec/decode", json=body, headers=customer_key)).status_code == 401
    service = {**HEADERS, "Authorization": f"Bearer {SERVICE_KEY}"}
    answer = await guarded.post("/codec/decode", json=body, headers=service)
    assert answer.status_code == 200
    assert from_json(answer.json())[0].data == b'"secret"'


async def test_bad_bodies_and_foreign_keys_get_the_error_envelope(dev: httpx.AsyncClient):
    wrong_shape = await dev.post("/codec/decode", json={"payloads": "nope"}, headers=HEADERS)
    assert wrong_shape.status_code == 422
    assert wrong_shape.json()["error"]["code"] == "invalid_input"
    not_base64 = {"payloads": [{"metadata": {}, "data": "not base64!"}]}
    bad_data = await dev.post("/codec/decode", json=not_base64, headers=HEADERS)
    assert bad_data.status_code == 422
    assert "payloads.0.data" in bad_data.json()["error"]["message"]
    other_key = Settings(payload_codec_key=base64.b64encode(b"k" * 32).decode(),
                         payload_codec_key_id="elsewhere")  # fmt: skip
    foreign = await dev.post(
        "/codec/decode", json=ui_json([sealed('"x"', other_key)]), headers=HEADERS
    )
    assert foreign.status_code == 422
    assert "unknown key id 'elsewhere'" in foreign.json()["error"]["message"]
