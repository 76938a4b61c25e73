"""Signed manifests in the OpenSSF model-signing format (see bundle.py), the signers (signers.py)
and the published public keys (keys.py)."""

from registry.domain.vocabulary import IGNORED_PATHS, MANIFEST_FILE, SIGNATURE_FILE
from registry.signing.bundle import (
    FileDigest,
    SignatureInvalid,
    SignedManifest,
    VerifiedManifest,
    path_problem,
    sign_manifest,
    verify_manifest_signature,
)
from registry.signing.factory import signer_from_settings
from registry.signing.keys import public_keys_from_document, signing_keys_document
from registry.signing.signers import KeyVaultSigner, LocalKeySigner, Signer, SigningKeyError, key_id_of

__all__ = [
    "IGNORED_PATHS",
    "MANIFEST_FILE",
    "SIGNATURE_FILE",
    "FileDigest",
    "KeyVaultSigner",
    "LocalKeySigner",
    "SignatureInvalid",
    "SignedManifest",
    "Signer",
    "SigningKeyError",
    "VerifiedManifest",
    "key_id_of",
    "path_problem",
    "public_keys_from_document",
    "sign_manifest",
    "signer_from_settings",
    "signing_keys_document",
    "verify_manifest_signature",
]
