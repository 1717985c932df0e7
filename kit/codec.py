"""Optional payload encryption: AES-256-GCM over every payload, keyed from ATELIER_CODEC_KEY.

With the key set, workflow inputs, results, signals and activity payloads are stored in Temporal
encrypted; only processes holding the key (workers, the CLI, `starter codec-server` for the UI)
can read them.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Sequence

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

ENCODING = b"binary/encrypted"
KEY_ID = b"atelier-aes-gcm-v1"


def parse_key(text: str) -> bytes:
    """A 32-byte key given as base64, e.g. from `openssl rand -base64 32`."""
    try:
        key = base64.b64decode(text, validate=True)
    except ValueError as exc:
        raise ValueError("ATELIER_CODEC_KEY must be base64") from exc
    if len(key) != 32:
        raise ValueError(f"ATELIER_CODEC_KEY must decode to 32 bytes, not {len(key)}")
    return key


class EncryptionCodec(PayloadCodec):
    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        out = []
        for payload in payloads:
            nonce = os.urandom(12)
            sealed = nonce + self._aead.encrypt(nonce, payload.SerializeToString(), KEY_ID)
            out.append(Payload(metadata={"encoding": ENCODING, "encryption-key-id": KEY_ID}, data=sealed))
        return out

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        out = []
        for payload in payloads:
            if payload.metadata.get("encoding") != ENCODING:
                out.append(payload)
                continue
            if payload.metadata.get("encryption-key-id") != KEY_ID:
                raise ValueError("payload was encrypted with an unknown key id")
            nonce, sealed = payload.data[:12], payload.data[12:]
            out.append(Payload.FromString(self._aead.decrypt(nonce, sealed, KEY_ID)))
        return out
