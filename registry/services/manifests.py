"""Manifests: each revision of a model version's files, as the registry verified them, signed.

A revision is recorded when a copy finishes with files other than the latest revision's (the
first copy, then each replacement); the earlier ones stay. Its digest covers its canonical JSON
(RFC 8785), and its signature (the OpenSSF model-signing format) covers the files' SHA-256.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace

import rfc8785

from registry.domain.errors import AlreadyExists, StorageUnavailable
from registry.domain.model import Manifest, ManifestFile, Registration
from registry.services.dependencies import Dependencies
from registry.services.registration import Unavailable


def digest_of(manifest: Manifest) -> str:
    return "sha256:" + hashlib.sha256(rfc8785.dumps(manifest.body())).hexdigest()


def _files(deps: Dependencies, registration: Registration) -> tuple[ManifestFile, ...]:
    rows = deps.store.files(registration)
    served = (ManifestFile(r.target, r.served_size, r.served_sha256) for r in rows if r.served)
    return tuple(sorted(served, key=lambda f: f.path))


def record_revision(deps: Dependencies, registration: Registration) -> Manifest:
    """The revision of the files as they now are: the latest one if they did not change, else a
    new one, signed and recorded (a repeat after a crash finds it recorded already)."""
    files = _files(deps, registration)
    latest = next(iter(deps.store.manifests(registration)), None)
    if latest is not None and latest.files == files:
        return latest
    change = registration.last_change or {}
    manifest = Manifest(
        name=registration.name,
        version=registration.version,
        owner=registration.owner,
        revision=(latest.revision if latest else 0) + 1,
        files=files,
        parent=registration.parent,
        created_at=registration.created_at,
        finished_at=deps.now(),
        by=str(change.get("by") or registration.owner),
    )
    manifest = _signed(deps, manifest)
    try:
        deps.store.add_manifest(registration, manifest)
    except AlreadyExists:
        return next(m for m in deps.store.manifests(registration) if m.revision == manifest.revision)
    return manifest


def _signed(deps: Dependencies, manifest: Manifest) -> Manifest:
    if deps.signer is None:
        return replace(manifest, digest=digest_of(manifest))
    # The model's identity is signed along: the bundle cannot be passed off for another model.
    identity = {
        "name": manifest.name,
        "version": manifest.version,
        "owner": manifest.owner,
        "revision": manifest.revision,
    }
    signature = deps.signer.sign_files(manifest.files, registry=identity)
    return replace(manifest, digest=digest_of(manifest), key_id=deps.signer.key_id, signature=signature)


def revisions(deps: Dependencies, registration: Registration) -> list[Manifest]:
    """Every revision, newest first."""
    try:
        return deps.store.manifests(registration)
    except StorageUnavailable as error:
        raise Unavailable("the registry's storage is unavailable; retry later") from error


def revision(deps: Dependencies, registration: Registration, number: int | None) -> Manifest | None:
    """One revision (the latest without a number), or None."""
    found = revisions(deps, registration)
    if number is None:
        return next(iter(found), None)
    return next((m for m in found if m.revision == number), None)
