"""Signatures in the OpenSSF model-signing format, made from digests the registry already holds.

The registry never has a model's bytes locally, so it cannot run model-signing's own signer (which
hashes a directory). It writes the same document from (path, size, sha256) instead, as
model-signing 1.x writes it for `model_signing sign key` with file serialization:

- an in-toto Statement v1 whose predicate (`https://model_signing/signature/v1.0`) lists every file
  as a resource `{name, algorithm: sha256, digest}`, sorted as model-signing sorts them, with the
  serialization `{method: files, hash_type: sha256, allow_symlinks: false, ignore_paths}`; its one
  subject is the model, with the SHA-256 over the files' digests in that order;
- signed in a DSSE envelope (payload type `application/vnd.in-toto+json`, signature over the
  DSSE PAE) with ECDSA P-256 / SHA-256;
- wrapped in a Sigstore bundle v0.3 whose verification material is the public key hint (the key
  id, see signers.py), with no transparency log entries.

`ignore_paths` names the two files a download writes beside the model files (SIGNATURE_FILE,
MANIFEST_FILE), so that a downloaded directory verifies as it is with

    model_signing verify key --signature DIR/model.sig --public_key KEY.pem DIR

The predicate also carries a `registry` object (which model, version, owner and revision, and each
file's size): model-signing ignores fields it does not know, and our verifier checks them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from registry.domain.vocabulary import GIT_PATHS, IGNORED_PATHS
from registry.signing.signers import Signer, SigningKeyError, key_id_of, load_public_key

BUNDLE_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://model_signing/signature/v1.0"


class SignatureInvalid(ValueError):
    """The bundle is malformed, is not signed by any of the given keys, or does not say what
    a model signature says."""


@dataclass(frozen=True)
class FileDigest:
    path: str  # relative, '/'-separated, as in the model
    size: int
    sha256: str  # hex


@dataclass(frozen=True)
class SignedManifest:
    bundle: dict[str, Any]  # the Sigstore bundle, as JSON (what `model.sig` holds)
    key_id: str
    digest: str  # 'sha256:<hex>' of the signed statement: pins this exact revision


@dataclass(frozen=True)
class VerifiedManifest:
    key_id: str
    subject: str
    subject_digest: str
    files: dict[str, str]  # path -> sha256 hex
    sizes: dict[str, int]  # path -> size, from the registry's part of the predicate
    registry: dict[str, Any] = field(default_factory=dict)  # name, version, owner, revision, ...
    ignore_paths: tuple[str, ...] = ()
    digest: str = ""  # 'sha256:<hex>' of the signed statement


def path_problem(path: str) -> str | None:
    """Why `path` cannot be signed as a file of a model directory, if it cannot."""
    parts = path.split("/")
    if not path or path.startswith("/") or any(p in ("", ".", "..") for p in parts) or "\\" in path:
        return "must be a relative path of non-empty '/'-separated names, without '.', '..' or '\\'"
    if any(ord(c) < 0x20 or c == "\x7f" for c in path):
        return "must not hold control characters"
    if parts[0] in IGNORED_PATHS or parts[0] in GIT_PATHS:
        return f"is a name a downloaded model directory reserves ({', '.join(IGNORED_PATHS + GIT_PATHS)})"
    return None


def _sort_key(path: str) -> PurePosixPath:
    # model-signing orders resources by their path (component by component), not as plain strings.
    return PurePosixPath(path)


def _check_files(files: Iterable[FileDigest]) -> list[FileDigest]:
    checked = sorted(files, key=lambda f: _sort_key(f.path))
    seen: set[str] = set()
    for item in checked:
        problem = path_problem(item.path)
        if problem:
            raise ValueError(f"file {item.path!r} {problem}")
        if item.path in seen:
            raise ValueError(f"file {item.path!r} is listed twice")
        seen.add(item.path)
        if len(item.sha256) != 64 or item.sha256 != item.sha256.lower() or not _is_hex(item.sha256):
            raise ValueError(f"file {item.path!r}: sha256 must be 64 lowercase hex digits")
        if item.size < 0:
            raise ValueError(f"file {item.path!r}: size must not be negative")
    for path in seen:  # a file and a directory of the same name cannot both be on disk
        parent = path.rpartition("/")[0]
        while parent:
            if parent in seen:
                raise ValueError(f"file {parent!r} is also a directory of {path!r}")
            parent = parent.rpartition("/")[0]
    return checked


def _is_hex(value: str) -> bool:
    try:
        bytes.fromhex(value)
    except ValueError:
        return False
    return True


def statement(
    files: Sequence[FileDigest], *, subject: str, registry: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The in-toto statement model-signing signs for a directory holding these files."""
    ordered = _check_files(files)
    root = hashlib.sha256(b"".join(bytes.fromhex(f.sha256) for f in ordered)).hexdigest()
    predicate: dict[str, Any] = {
        "serialization": {
            "method": "files",
            "hash_type": "sha256",
            "allow_symlinks": False,
            "ignore_paths": list(IGNORED_PATHS),
        },
        "resources": [{"name": f.path, "algorithm": "sha256", "digest": f.sha256} for f in ordered],
        "registry": {**(registry or {}), "sizes": {f.path: f.size for f in ordered}},
    }
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": subject, "digest": {"sha256": root}}],
        "predicateType": PREDICATE_TYPE,
        "predicate": predicate,
    }


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding: what the signature covers."""
    return b"DSSEv1 %d %s %d %s" % (len(payload_type), payload_type.encode(), len(payload), payload)


def sign_manifest(
    files: Sequence[FileDigest],
    signer: Signer,
    *,
    subject: str,
    registry: Mapping[str, Any] | None = None,
) -> SignedManifest:
    """A model-signing signature (Sigstore bundle) over these files, signed by `signer`.

    `subject` names the model (model-signing takes the directory's name; it is informative only);
    `registry` is signed along (e.g. name, version, owner, revision, parent, created_at).
    """
    payload = json.dumps(
        statement(files, subject=subject, registry=registry), separators=(",", ":"), ensure_ascii=False
    ).encode()
    signature = signer.sign(pae(PAYLOAD_TYPE, payload))
    bundle = {
        "mediaType": BUNDLE_MEDIA_TYPE,
        "verificationMaterial": {"publicKey": {"hint": signer.key_id}, "tlogEntries": []},
        "dsseEnvelope": {
            "payload": base64.b64encode(payload).decode(),
            "payloadType": PAYLOAD_TYPE,
            "signatures": [{"sig": base64.b64encode(signature).decode(), "keyid": signer.key_id}],
        },
    }
    return SignedManifest(
        bundle=bundle, key_id=signer.key_id, digest="sha256:" + hashlib.sha256(payload).hexdigest()
    )


def _b64(value: Any, what: str) -> bytes:
    if not isinstance(value, str):
        raise SignatureInvalid(f"{what} is not a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise SignatureInvalid(f"{what} is not valid base64") from None


def verify_manifest_signature(
    bundle: Mapping[str, Any], public_keys: Mapping[str, bytes]
) -> VerifiedManifest:
    """Check a bundle against public keys (key id -> PEM) and read what it signs.

    The signature must verify with the key its hint names (or, without a hint, with one of the
    keys), and the statement must be a model-signing v1.0 file manifest that is consistent with
    itself. SignatureInvalid says why not.
    """
    try:
        return _verify(bundle, public_keys)
    except SignatureInvalid:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise SignatureInvalid(f"the signature is not a model-signing bundle: {error}") from None


def _verify(bundle: Mapping[str, Any], public_keys: Mapping[str, bytes]) -> VerifiedManifest:
    if bundle.get("mediaType") != BUNDLE_MEDIA_TYPE:
        raise SignatureInvalid(f"bundle media type {bundle.get('mediaType')!r}, expected {BUNDLE_MEDIA_TYPE}")
    envelope = bundle["dsseEnvelope"]
    if envelope.get("payloadType") != PAYLOAD_TYPE:
        raise SignatureInvalid(f"payload type {envelope.get('payloadType')!r}, expected {PAYLOAD_TYPE}")
    payload = _b64(envelope["payload"], "the payload")
    signatures = envelope["signatures"]
    if not isinstance(signatures, list) or len(signatures) != 1:
        raise SignatureInvalid("the envelope must hold exactly one signature")
    signature = _b64(signatures[0]["sig"], "the signature")
    hint = ((bundle.get("verificationMaterial") or {}).get("publicKey") or {}).get("hint")
    candidates: dict[str, bytes]
    if isinstance(hint, str) and hint:
        candidates = {hint: public_keys[hint]} if hint in public_keys else {}
    else:
        candidates = dict(public_keys)
    if not candidates:
        raise SignatureInvalid(f"signed by key {hint}, which is not among the published keys")
    key_id = _verifying_key(candidates, pae(PAYLOAD_TYPE, payload), signature)
    return _read_statement(json.loads(payload), key_id, "sha256:" + hashlib.sha256(payload).hexdigest())


def _verifying_key(candidates: Mapping[str, bytes], signed: bytes, signature: bytes) -> str:
    for key_id, pem in candidates.items():
        try:
            key = load_public_key(pem)
        except SigningKeyError:
            continue
        if key_id_of(pem) != key_id:
            continue  # a key published under another key's id
        try:
            key.verify(signature, signed, ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            continue
        return key_id
    raise SignatureInvalid("the signature does not verify with the signing key")


def _read_statement(document: Any, key_id: str, digest: str) -> VerifiedManifest:
    if document.get("_type") != STATEMENT_TYPE or document.get("predicateType") != PREDICATE_TYPE:
        raise SignatureInvalid("the statement is not a model-signing v1.0 statement")
    predicate = document["predicate"]
    serialization = predicate["serialization"]
    if serialization.get("method") != "files" or serialization.get("hash_type") != "sha256":
        raise SignatureInvalid("the statement is not a per-file SHA-256 manifest")
    files: dict[str, str] = {}
    ordered: list[bytes] = []
    for resource in predicate["resources"]:
        name, value = resource["name"], resource["digest"]
        if resource.get("algorithm") != "sha256" or not isinstance(value, str) or len(value) != 64:
            raise SignatureInvalid(f"resource {name!r} has no SHA-256 digest")
        problem = path_problem(name) if isinstance(name, str) else "is not a string"
        if problem:
            raise SignatureInvalid(f"resource {name!r} {problem}")
        if name in files:
            raise SignatureInvalid(f"resource {name!r} is listed twice")
        files[name] = value.lower()
        ordered.append(bytes.fromhex(value))
    subjects = document["subject"]
    if len(subjects) != 1:
        raise SignatureInvalid("the statement must have exactly one subject")
    root = hashlib.sha256(b"".join(ordered)).hexdigest()
    if subjects[0]["digest"]["sha256"] != root:
        raise SignatureInvalid("the statement's subject digest does not match its resources")
    registry = dict(predicate.get("registry") or {})
    sizes = {str(k): int(v) for k, v in (registry.pop("sizes", None) or {}).items()}
    return VerifiedManifest(
        key_id=key_id,
        subject=str(subjects[0]["name"]),
        subject_digest=root,
        files=files,
        sizes=sizes,
        registry=registry,
        ignore_paths=tuple(str(p) for p in serialization.get("ignore_paths", ())),
        digest=digest,
    )
