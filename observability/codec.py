"""AES-256-GCM payload codec: workflow payloads reach Temporal's history as ciphertext.

Each encrypted payload names its key in the metadata (`encryption-key-id`), so keys can
rotate: the current key encrypts, retired keys still decrypt what they once wrote.
Payloads that are not encrypted (histories recorded before encryption, a client
without the codec) pass through decode unchanged, so replay keeps working.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, PayloadCodec

from config.settings import Settings, aes_key, parse_retired_keys

ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"
_NONCE_BYTES = 12


class PayloadDecryptError(ValueError):
    """A payload the codec cannot open: unknown key id, or altered bytes."""


class EncryptionCodec(PayloadCodec):
    def __init__(self, key_id: str, key: bytes, retired: Mapping[str, bytes] | None = None) -> None:
        self.key_id = key_id
        self._ciphers = {kid: AESGCM(k) for kid, k in (retired or {}).items()}
        self._ciphers[key_id] = AESGCM(key)

    @classmethod
    def from_settings(cls, settings: Settings) -> EncryptionCodec:
        return cls(
            settings.payload_codec_key_id,
            aes_key(settings.payload_codec_key.get_secret_value()),
            parse_retired_keys(settings.payload_codec_retired_keys.get_secret_value()),
        )

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.encrypt(p) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.decrypt(p) for p in payloads]

    def encrypt(self, payload: Payload) -> Payload:
        """The whole payload (metadata and data) sealed; the key id is authenticated too."""
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._ciphers[self.key_id].encrypt(
            nonce, payload.SerializeToString(), self.key_id.encode()
        )
        return Payload(
            metadata={"encoding": ENCODING, KEY_ID: self.key_id.encode()}, data=nonce + sealed
        )

    def decrypt(self, payload: Payload) -> Payload:
        if payload.metadata.get("encoding") != ENCODING:
            return payload  # written without encryption: nothing to open
        key_id = payload.metadata.get(KEY_ID, b"").decode()
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise PayloadDecryptError(f"payload encrypted under unknown key id {key_id!r}")
        nonce, sealed = payload.data[:_NONCE_BYTES], payload.data[_NONCE_BYTES:]
        try:
            return Payload.FromString(cipher.decrypt(nonce, sealed, key_id.encode()))
        except InvalidTag as exc:
            raise PayloadDecryptError(
                f"payload under key {key_id!r} failed to authenticate"
            ) from exc


def data_converter(settings: Settings) -> DataConverter:
    """The converter of every client, worker, test environment and replayer: pydantic, sealed."""
    return dataclasses.replace(
        pydantic_data_converter, payload_codec=EncryptionCodec.from_settings(settings)
    )
