"""The payload codec: AES-GCM sealed payloads, a key id in the metadata, plain ones passed."""

from __future__ import annotations

import base64
import os

import pytest
from pydantic import ValidationError
from temporalio.api.common.v1 import Payload

from config.settings import DEV_PAYLOAD_CODEC_KEY, Settings
from observability.codec import ENCODING, KEY_ID, EncryptionCodec, PayloadDecryptError
from tests.converter import DATA_CONVERTER
from workflows.refund_messages import RefundInput

KEY = os.urandom(32)
SECRET = "ada.lovelace@example.com"


def plain(text: str) -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=f'"{text}"'.encode())


async def test_a_payload_is_sealed_under_its_key_id_and_opens_again():
    codec = EncryptionCodec("k1", KEY)
    [sealed] = await codec.encode([plain(SECRET)])
    assert sealed.metadata["encoding"] == ENCODING
    assert sealed.metadata[KEY_ID] == b"k1"
    assert SECRET.encode() not in sealed.SerializeToString()
    assert await codec.decode([sealed]) == [plain(SECRET)]
    # A fresh nonce each time: equal inputs do not give equal ciphertexts.
    [again] = await codec.encode([plain(SECRET)])
    assert again.data != sealed.data


async def test_payloads_written_without_encryption_pass_through_decode():
    codec = EncryptionCodec("k1", KEY)
    unsealed = [plain(SECRET), Payload(metadata={"encoding": b"binary/null"})]
    assert await codec.decode(unsealed) == unsealed


async def test_an_unknown_key_id_or_altered_bytes_are_refused():
    [sealed] = await EncryptionCodec("k1", KEY).encode([plain(SECRET)])
    with pytest.raises(PayloadDecryptError, match="unknown key id 'k1'"):
        await EncryptionCodec("k2", os.urandom(32)).decode([sealed])
    altered = Payload()
    altered.CopyFrom(sealed)
    altered.data = sealed.data[:-1] + bytes([sealed.data[-1] ^ 1])
    with pytest.raises(PayloadDecryptError, match="failed to authenticate"):
        await EncryptionCodec("k1", KEY).decode([altered])
    # The key id is authenticated too: relabelling a payload does not open it.
    relabelled = Payload()
    relabelled.CopyFrom(sealed)
    relabelled.metadata[KEY_ID] = b"k0"
    with pytest.raises(PayloadDecryptError):
        await EncryptionCodec("k0", KEY, {"k1": KEY}).decode([relabelled])


async def test_a_retired_key_still_opens_what_it_wrote():
    old = os.urandom(32)
    [sealed] = await EncryptionCodec("2025", old).encode([plain(SECRET)])
    rotated = Settings(
        payload_codec_key=base64.b64encode(KEY).decode(),
        payload_codec_key_id="2026",
        payload_codec_retired_keys=f"2025={base64.b64encode(old).decode()}",
    )
    codec = EncryptionCodec.from_settings(rotated)
    assert await codec.decode([sealed]) == [plain(SECRET)]
    [fresh] = await codec.encode([plain(SECRET)])
    assert fresh.metadata[KEY_ID] == b"2026"


async def test_the_shared_data_converter_encrypts_pydantic_models():
    assert isinstance(DATA_CONVERTER.payload_codec, EncryptionCodec)
    message = RefundInput(bill_id="bill_1", reason=SECRET, request_id="r1")
    [payload] = await DATA_CONVERTER.encode([message])
    assert payload.metadata["encoding"] == ENCODING
    assert SECRET.encode() not in payload.SerializeToString()
    assert await DATA_CONVERTER.decode([payload], [RefundInput]) == [message]


def test_production_refuses_the_dev_key_and_every_key_must_be_aes_sized():
    real = {"billing_api_key": "sk_live_x" * 3, "gateway_webhook_secret": "whsec_live_y" * 3}
    with pytest.raises(ValidationError, match="PAYLOAD_CODEC_KEY is the dev placeholder"):
        Settings.model_validate({"environment": "production", **real})
    key = base64.b64encode(KEY).decode()
    Settings.model_validate({"environment": "production", "payload_codec_key": key, **real})
    assert Settings.model_fields["payload_codec_key"].default.get_secret_value() == (
        DEV_PAYLOAD_CODEC_KEY
    )
    with pytest.raises(ValidationError, match="16, 24 or 32 bytes"):
        Settings(payload_codec_key=base64.b64encode(b"short").decode())
    with pytest.raises(ValidationError, match="base64"):
        Settings(payload_codec_key="not base64!")
    with pytest.raises(ValidationError, match="id=base64key"):
        Settings(payload_codec_retired_keys="no-equals-sign")
