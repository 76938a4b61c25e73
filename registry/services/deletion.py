"""Deleting a model: a tombstone first, then everything stored, then the record.

The tombstone (state Deleting) makes the model gone for the API at once, and stops any worker at
its next checkpoint. What follows (file rows, blobs, listing, the record) can fail half-way on a
passing storage error: the tombstone stays, and a retried DELETE, a new PUT of the same name and
version, or the sweep finishes the work. The change log is kept: the owner can read a deleted
model's history.
"""

from __future__ import annotations

import logging

from registry.domain.errors import ConcurrentUpdate, NotFound
from registry.domain.model import Registration
from registry.domain.vocabulary import State
from registry.services.dependencies import Dependencies

log = logging.getLogger(__name__)
_ATTEMPTS = 5


def tombstone(deps: Dependencies, registration: Registration) -> Registration:
    """Mark it Deleting (re-applied if a worker checkpoints meanwhile); NotFound if it went away."""
    for _ in range(_ATTEMPTS):
        if registration.gone:
            return registration
        registration.mark_deleting(deps.now())
        try:
            deps.store.replace(registration)
            break
        except ConcurrentUpdate:
            fresh = deps.store.get(registration.owner, registration.name, registration.version)
            if fresh is None or fresh.registration_id != registration.registration_id:
                raise NotFound() from None
            registration = fresh
    else:
        raise ConcurrentUpdate()
    deps.store.unpublish(registration)  # after the record: whatever listed it before is undone
    return registration


def finish_deletion(deps: Dependencies, registration: Registration) -> None:
    """Remove what a tombstone's registration stored, then the tombstone. Safe to repeat."""
    deps.store.unpublish(registration)
    deps.store.forget_files(registration)
    deps.store.forget_manifests(registration)
    removed = deps.files.delete_prefix(registration.blob_prefix)
    for _ in range(_ATTEMPTS):
        try:
            deps.store.delete(registration)
            break
        except ConcurrentUpdate:
            fresh = deps.store.get(registration.owner, registration.name, registration.version)
            if fresh is None or fresh.registration_id != registration.registration_id:
                break  # someone else finished it
            registration = fresh
    log.info("deleted %s (%d blobs)", registration.key, removed)


def finish_pending_deletions(deps: Dependencies) -> int:
    """The sweep's part: finish every delete that stopped half-way; returns how many."""
    finished = 0
    for registration in deps.store.in_state(State.DELETING):
        try:
            finish_deletion(deps, registration)
            finished += 1
        except Exception:  # the next sweep tries again
            log.exception("could not finish deleting %s", registration.key)
    return finished
