"""Who signs manifests: the `Signer` port and its two adapters.

A signer holds an EC P-256 key and signs bytes with ECDSA over SHA-256, answering the DER-encoded
signature (what the Sigstore bundle carries). Its key id is the model-signing "public key hint":
the hex SHA-256 of the public key's PEM (SubjectPublicKeyInfo), so a bundle names the key that
verifies it and the published keys are looked up by that id.

- `LocalKeySigner`: a private key in the app settings (`REGISTRY_SIGNING_KEY`), for local runs.
- `KeyVaultSigner`: a Key Vault key (`REGISTRY_SIGNING_KEY_ID`); the vault signs a SHA-256 digest
  (ES256) with the app's managed identity, and the private key never leaves it.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from typing import Any, Protocol

from azure.core.exceptions import AzureError
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

log = logging.getLogger(__name__)
_COORDINATE_BYTES = 32  # P-256
_EARLIER_KEYS_TTL = 600.0  # seconds between reads of the key's versions


class SigningKeyError(ValueError):
    """A signing key that is not an EC P-256 key, or a signature the vault answered malformed."""


class Signer(Protocol):
    @property
    def key_id(self) -> str: ...

    def public_key_pem(self) -> bytes: ...

    def sign(self, data: bytes) -> bytes:
        """ECDSA P-256 / SHA-256 over `data`, DER-encoded."""
        ...


def public_pem(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def key_id_of(pem: bytes) -> str:
    """The key id of a public key: model-signing's hint, sha256(PEM of SubjectPublicKeyInfo)."""
    return hashlib.sha256(public_pem(load_public_key(pem))).hexdigest()


def load_public_key(pem: bytes) -> ec.EllipticCurvePublicKey:
    try:
        key = serialization.load_pem_public_key(pem)
    except ValueError as error:
        raise SigningKeyError(f"not a PEM public key: {error}") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise SigningKeyError("signing keys are EC P-256 keys")
    return key


class LocalKeySigner:
    """An EC P-256 private key held by the process (local development)."""

    def __init__(self, private_pem: bytes) -> None:
        try:
            key = serialization.load_pem_private_key(private_pem, password=None)
        except (ValueError, TypeError) as error:
            raise SigningKeyError(
                f"REGISTRY_SIGNING_KEY is not an unencrypted PEM private key: {error}"
            ) from None
        if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
            raise SigningKeyError("REGISTRY_SIGNING_KEY must be an EC P-256 private key")
        self._key = key
        self._public_pem = public_pem(key.public_key())
        self._key_id = hashlib.sha256(self._public_pem).hexdigest()

    @classmethod
    def generate(cls) -> LocalKeySigner:
        """A fresh key (tests, and the command that makes a development key)."""
        key = ec.generate_private_key(ec.SECP256R1())
        return cls(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )

    @property
    def key_id(self) -> str:
        return self._key_id

    def public_key_pem(self) -> bytes:
        return self._public_pem

    def sign(self, data: bytes) -> bytes:
        return self._key.sign(data, ec.ECDSA(hashes.SHA256()))


class _KeyClient(Protocol):
    """What KeyVaultSigner uses of azure.keyvault.keys.KeyClient."""

    def get_key(self, name: str, version: str | None = None, **kwargs: Any) -> Any: ...

    def list_properties_of_key_versions(self, name: str, **kwargs: Any) -> Any: ...


class _CryptographyClient(Protocol):
    """What KeyVaultSigner uses of azure.keyvault.keys.crypto.CryptographyClient."""

    def sign(self, algorithm: Any, digest: bytes, **kwargs: Any) -> Any: ...


class KeyVaultSigner:
    """Signs through the Key Vault crypto API: the vault signs the SHA-256 digest with ES256 and
    answers the raw r||s signature, which is re-encoded as DER. The public key is read once."""

    def __init__(self, key_uri: str, key_client: _KeyClient, crypto_client: _CryptographyClient) -> None:
        from azure.keyvault.keys import KeyVaultKeyIdentifier

        identifier = KeyVaultKeyIdentifier(key_uri)
        self._name, self._version = identifier.name, identifier.version
        self._keys = key_client
        self._crypto = crypto_client
        self._public: tuple[bytes, str] | None = None
        self._earlier: tuple[float, list[bytes]] | None = None  # (read at, PEMs)
        self._lock = threading.Lock()

    def _pem_of(self, version: str | None) -> bytes:
        jwk = self._keys.get_key(self._name, version).key
        if getattr(jwk, "crv", None) not in ("P-256", "P256") or not jwk.x or not jwk.y:
            raise SigningKeyError(f"the Key Vault key {self._name} is not an EC P-256 key")
        numbers = ec.EllipticCurvePublicNumbers(
            int.from_bytes(jwk.x, "big"), int.from_bytes(jwk.y, "big"), ec.SECP256R1()
        )
        return public_pem(numbers.public_key())

    def _public_key(self) -> tuple[bytes, str]:
        """The key's public part, read from the vault on first use (not at start-up)."""
        with self._lock:
            if self._public is None:
                pem = self._pem_of(self._version)
                self._public = (pem, hashlib.sha256(pem).hexdigest())
            return self._public

    def earlier_public_keys(self) -> list[bytes]:
        """The public keys of the key's other enabled versions (a rotated key keeps its earlier
        versions): what they signed still verifies without any setting. Read from the vault at
        most every few minutes; while the vault cannot be read, the last list read is kept."""
        now = time.monotonic()
        with self._lock:
            if self._earlier is not None and now - self._earlier[0] < _EARLIER_KEYS_TTL:
                return self._earlier[1]
        try:
            pems = [
                self._pem_of(properties.version)
                for properties in self._keys.list_properties_of_key_versions(self._name)
                if properties.enabled is not False and properties.version != self._version
            ]
        except (AzureError, SigningKeyError):
            log.warning(
                "could not read the earlier versions of the signing key %s", self._name, exc_info=True
            )
            return self._earlier[1] if self._earlier is not None else []
        with self._lock:
            self._earlier = (now, pems)
        return pems

    @classmethod
    def connect(cls, key_uri: str, credential: Any) -> KeyVaultSigner:
        """The signer for a key URI, reaching the vault with `credential` (the managed identity)."""
        from azure.keyvault.keys import KeyClient, KeyVaultKeyIdentifier
        from azure.keyvault.keys.crypto import CryptographyClient

        vault_url = KeyVaultKeyIdentifier(key_uri).vault_url
        return cls(key_uri, KeyClient(vault_url, credential), CryptographyClient(key_uri, credential))

    @property
    def key_id(self) -> str:
        return self._public_key()[1]

    def public_key_pem(self) -> bytes:
        return self._public_key()[0]

    def sign(self, data: bytes) -> bytes:
        from azure.keyvault.keys.crypto import SignatureAlgorithm

        result = self._crypto.sign(SignatureAlgorithm.es256, hashlib.sha256(data).digest())
        raw = bytes(result.signature)
        if len(raw) != 2 * _COORDINATE_BYTES:
            raise SigningKeyError(f"Key Vault answered a {len(raw)}-byte ES256 signature, not 64 bytes")
        r = int.from_bytes(raw[:_COORDINATE_BYTES], "big")
        s = int.from_bytes(raw[_COORDINATE_BYTES:], "big")
        return encode_dss_signature(r, s)
