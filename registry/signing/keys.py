"""The published signing keys: `GET /api/v1.0/signing-keys`.

`{"keys": [JWK, ...], "pem": {key id: PEM}}`: the current signer's public key first, then the
public keys of earlier signing keys (`REGISTRY_SIGNING_PREVIOUS_PUBLIC_KEYS`), so that manifests
signed before a rotation still verify. A key id is the model-signing public key hint (the SHA-256
of the PEM), the id a bundle names its key by.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from typing import Any

from registry.signing.signers import Signer, SigningKeyError, key_id_of, load_public_key, public_pem


def _b64url(number: int) -> str:
    return base64.urlsafe_b64encode(number.to_bytes(32, "big")).rstrip(b"=").decode()


def jwk(pem: bytes) -> dict[str, str]:
    """The JWK (RFC 7517/7518) of an EC P-256 public key, with its key id."""
    numbers = load_public_key(pem).public_numbers()
    return {
        "kty": "EC",
        "crv": "P-256",
        "x": _b64url(numbers.x),
        "y": _b64url(numbers.y),
        "kid": key_id_of(pem),
        "alg": "ES256",
        "use": "sig",
    }


def signing_keys_document(signer: Signer, previous_public_keys: Sequence[bytes] = ()) -> dict[str, Any]:
    """What `GET /api/v1.0/signing-keys` answers (no secret in it: public keys only)."""
    pems: dict[str, bytes] = {}
    for pem in (signer.public_key_pem(), *previous_public_keys):
        canonical = public_pem(load_public_key(pem))
        pems.setdefault(key_id_of(canonical), canonical)
    return {
        "keys": [jwk(pem) for pem in pems.values()],
        "pem": {key_id: pem.decode() for key_id, pem in pems.items()},
    }


def public_keys_from_document(document: Mapping[str, Any]) -> dict[str, bytes]:
    """Key id -> PEM from a signing-keys document, keeping only keys whose id is their own hint
    and whose JWK, when listed, is the same key as the PEM."""
    jwks = {k.get("kid"): k for k in document.get("keys", []) if isinstance(k, Mapping)}
    keys: dict[str, bytes] = {}
    for key_id, text in (document.get("pem") or {}).items():
        pem = str(text).encode()
        try:
            if key_id_of(pem) != key_id:
                continue
            listed = jwks.get(key_id)
            if listed is not None and {k: listed.get(k) for k in ("x", "y", "crv")} != {
                k: v for k, v in jwk(pem).items() if k in ("x", "y", "crv")
            }:
                continue
        except SigningKeyError:
            continue
        keys[key_id] = pem
    return keys
