"""The registry's `ModelSigner` port (registry/ports.py), on a `Signer`: signs a manifest revision's
files in the model-signing format and publishes the keys that verify what it signed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from registry.settings import Settings
from registry.signing.bundle import FileDigest, sign_manifest
from registry.signing.factory import signer_from_settings
from registry.signing.keys import signing_keys_document
from registry.signing.signers import KeyVaultSigner, Signer


class _File(Protocol):
    @property
    def path(self) -> str: ...
    @property
    def size(self) -> int: ...
    @property
    def sha256(self) -> str: ...


class RegistryModelSigner:
    def __init__(self, signer: Signer, previous_public_keys: Sequence[bytes] = ()) -> None:
        self.signer = signer
        self.previous_public_keys = tuple(previous_public_keys)

    @property
    def key_id(self) -> str:
        return self.signer.key_id

    def sign_files(self, files: Sequence[_File], registry: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The bundle over these (path, size, sha256) files. `registry` (name, version, owner,
        revision, ...) is signed along: clients then refuse the bundle for any other model or
        revision. Its "name" is the statement's subject (model-signing's informative model name)."""
        digests = [FileDigest(f.path, f.size, f.sha256) for f in files]
        subject = str((registry or {}).get("name") or "model")
        return sign_manifest(digests, self.signer, subject=subject, registry=registry).bundle

    def published_keys(self) -> dict[str, Any]:
        """`GET /api/v1.0/signing-keys`: the current key and the previous ones, JWKS and PEM."""
        earlier = self.signer.earlier_public_keys() if isinstance(self.signer, KeyVaultSigner) else []
        return signing_keys_document(self.signer, (*self.previous_public_keys, *earlier))


def model_signer_from_settings(settings: Settings, credential: Any = None) -> RegistryModelSigner | None:
    """The signer the settings name, or None when they name no signing key (nothing is signed)."""
    if not (settings.signing_key_uri or settings.signing_key_pem):
        return None
    return RegistryModelSigner(
        signer_from_settings(settings, credential), settings.signing_previous_public_keys
    )
