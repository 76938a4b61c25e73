"""Write-only secrets (source SAS URLs, registry passwords) sealed with AES-GCM, under a key that
can be rotated.

Every sealed value and every digest names the key it was made with (a key id derived from the
key). The registry seals with the current key and opens with the current or any previous one
(`REGISTRY_SEALING_PREVIOUS_KEYS`), so a new key can be brought in while old values stay readable;
`python -m registry reseal` then re-seals what is stored and the old key can be retired.

A sealed value is bound to its registration (associated data): it cannot be moved to another
record. The body digest is an HMAC, so it reveals nothing about the secrets it covers. Paging
tokens are sealed the same way, bound to the caller.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_NONCE_BYTES = 12
_MAGIC = b"RS\x01"  # sealed values of this format start with it, then the key id
_KEY_ID_BYTES = 8


class SealedUnreadable(ValueError):
    """Sealed data that no configured key opens (a retired key, or not ours)."""


@dataclass(frozen=True)
class _Key:
    id: bytes
    aead: AESGCM
    digest_key: bytes
    token: AESGCM

    @classmethod
    def of(cls, key: bytes) -> _Key:
        # Separate keys for separate purposes, all derived from the one configured key.
        return cls(
            id=hmac.digest(key, b"registry/key-id", hashlib.sha256)[:_KEY_ID_BYTES],
            aead=AESGCM(hmac.digest(key, b"registry/seal", hashlib.sha256)),
            digest_key=hmac.digest(key, b"registry/digest", hashlib.sha256),
            token=AESGCM(hmac.digest(key, b"registry/page-token", hashlib.sha256)),
        )


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


class Sealer:
    def __init__(self, key: bytes, previous: Sequence[bytes] = ()) -> None:
        self._current = _Key.of(key)
        self._keys = {k.id: k for k in (_Key.of(p) for p in previous)}
        self._keys[self._current.id] = self._current

    @property
    def key_id(self) -> str:
        return self._current.id.hex()

    # -- sealing --

    def seal(self, value: Any, bound_to: str) -> bytes:
        nonce = os.urandom(_NONCE_BYTES)
        plain = zlib.compress(json.dumps(value, separators=(",", ":")).encode())
        key = self._current
        return _MAGIC + key.id + nonce + key.aead.encrypt(nonce, plain, bound_to.encode())

    def unseal(self, sealed: bytes, bound_to: str) -> Any:
        """The value; SealedUnreadable if no configured key opens it for this binding."""
        for key, nonce, cipher in self._candidates(sealed):
            try:
                plain = key.aead.decrypt(nonce, cipher, bound_to.encode())
            except InvalidTag:
                continue
            return json.loads(zlib.decompress(plain))
        raise SealedUnreadable("sealed data does not belong to this record, or its key is not configured")

    def _candidates(self, sealed: bytes) -> list[tuple[_Key, bytes, bytes]]:
        found: list[tuple[_Key, bytes, bytes]] = []
        if sealed.startswith(_MAGIC):
            key_id = sealed[len(_MAGIC) : len(_MAGIC) + _KEY_ID_BYTES]
            rest = sealed[len(_MAGIC) + _KEY_ID_BYTES :]
            if key_id in self._keys:
                found.append((self._keys[key_id], rest[:_NONCE_BYTES], rest[_NONCE_BYTES:]))
        # Values sealed before key ids existed (nonce + cipher text): try every key.
        found += [(key, sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:]) for key in self._keys.values()]
        return found

    def is_current(self, sealed: bytes) -> bool:
        """Sealed with the current key (nothing to re-seal)."""
        return not sealed or sealed.startswith(_MAGIC + self._current.id)

    # -- digests --

    def digest(self, value: Any) -> str:
        """'<key id>:<HMAC of the canonical JSON>' with the current key."""
        return self._digest_with(self._current, value)

    @staticmethod
    def _digest_with(key: _Key, value: Any) -> str:
        mac = hmac.new(key.digest_key, _canonical(value), hashlib.sha256).hexdigest()
        return f"{key.id.hex()}:{mac}"

    def digest_matches(self, stored: str, value: Any) -> bool | None:
        """Whether `stored` is the digest of `value`; None if its key is no longer configured."""
        key_id, _, _ = stored.rpartition(":")
        if not key_id:  # a digest made before key ids: try every key
            return any(
                hmac.compare_digest(self._digest_with(k, value).partition(":")[2], stored)
                for k in self._keys.values()
            )
        try:
            key = self._keys.get(bytes.fromhex(key_id))
        except ValueError:
            return None
        if key is None:
            return None
        return hmac.compare_digest(self._digest_with(key, value), stored)

    def digest_is_current(self, stored: str) -> bool:
        return stored.startswith(self.key_id + ":")

    # -- paging tokens --

    def seal_token(self, value: Any, bound_to: str) -> str:
        """An opaque, tamper-evident token (encrypted and authenticated, bound to `bound_to`)."""
        nonce = os.urandom(_NONCE_BYTES)
        key = self._current
        sealed = key.id + nonce + key.token.encrypt(nonce, _canonical(value), bound_to.encode())
        return base64.urlsafe_b64encode(sealed).decode().rstrip("=")

    def open_token(self, token: str, bound_to: str) -> Any:
        """The token's value; SealedUnreadable if it was not issued by us for `bound_to`."""
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (binascii.Error, ValueError):
            raise SealedUnreadable("not a token") from None
        key = self._keys.get(raw[:_KEY_ID_BYTES])
        nonce, cipher = raw[_KEY_ID_BYTES : _KEY_ID_BYTES + _NONCE_BYTES], raw[_KEY_ID_BYTES + _NONCE_BYTES :]
        if key is None or len(nonce) != _NONCE_BYTES:
            raise SealedUnreadable("not a token")
        try:
            return json.loads(key.token.decrypt(nonce, cipher, bound_to.encode()))
        except (InvalidTag, ValueError):
            raise SealedUnreadable("not a token") from None
