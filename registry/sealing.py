"""Write-only secrets (source SAS URLs, registry passwords) sealed with AES-GCM.

The sealed blob is bound to its registration (associated data), so it cannot be moved to another
record. The body digest is an HMAC, so it reveals nothing about the secrets it covers.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import zlib
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_NONCE_BYTES = 12


class Sealer:
    def __init__(self, key: bytes) -> None:
        # Separate keys for separate purposes, both derived from the one configured key.
        self._aead = AESGCM(hmac.digest(key, b"registry/seal", hashlib.sha256))
        self._digest_key = hmac.digest(key, b"registry/digest", hashlib.sha256)

    def seal(self, value: Any, bound_to: str) -> bytes:
        nonce = os.urandom(_NONCE_BYTES)
        plain = zlib.compress(json.dumps(value, separators=(",", ":")).encode())
        return nonce + self._aead.encrypt(nonce, plain, bound_to.encode())

    def unseal(self, sealed: bytes, bound_to: str) -> Any:
        nonce, cipher = sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:]
        try:
            plain = self._aead.decrypt(nonce, cipher, bound_to.encode())
        except InvalidTag:
            raise ValueError("sealed data does not belong to this record or the key changed") from None
        return json.loads(zlib.decompress(plain))

    def digest(self, value: Any) -> str:
        canonical = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hmac.new(self._digest_key, canonical.encode(), hashlib.sha256).hexdigest()
