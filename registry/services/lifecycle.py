"""Writing a registration's lifecycle steps, and the one way a registration ends.

Every ending (finished; failed by the worker, the poison queue, the last Service Bus delivery, a
replay that could not restart it, a takeover limit) goes through `conclude`: it records the end,
then brings the public listing in line.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from registry.domain.errors import ConcurrentUpdate, IllegalTransition
from registry.domain.model import Registration
from registry.domain.vocabulary import State
from registry.ports import RegistrationStore
from registry.services.catalog import refresh_listing
from registry.services.dependencies import Dependencies

log = logging.getLogger(__name__)
_ATTEMPTS = 3


def save_held(store: RegistrationStore, registration: Registration, *, lease: str) -> None:
    """Write a record whose lease the caller holds (If-Match). If someone else wrote it meanwhile
    but the lease is still `lease` (the owner edited it), keep the worker's fields on the fresh
    record and try again; otherwise ConcurrentUpdate (another worker has it, or it was deleted
    or registered anew)."""
    for _ in range(_ATTEMPTS):
        try:
            store.replace(registration)
            return
        except ConcurrentUpdate:
            fresh = store.get(registration.owner, registration.name, registration.version)
            if (
                fresh is None
                or fresh.registration_id != registration.registration_id
                or fresh.lease_id != lease
                or fresh.gone
            ):
                raise
            registration.rebase(fresh)
    raise ConcurrentUpdate()


Ending = Callable[[Registration], None]


def conclude(
    deps: Dependencies, registration: Registration, ending: Ending, *, lease: str | None
) -> Registration | None:
    """End a registration (`ending` calls its finish or fail) and refresh its listing.

    With `lease`, the caller holds the registration's lease (the worker). Without, the caller is
    outside any copy (poison queue, last delivery, replay): the fresh record is ended only if it
    is the same registration, still InProgress, and no live worker holds it.
    Returns the ended record, or None if it was not this caller's to end.
    """
    try:
        if lease is not None:
            ending(registration)
            save_held(deps.store, registration, lease=lease)
            ended: Registration | None = registration
        else:
            ended = _end_unheld(deps, registration, ending)
    except ConcurrentUpdate:
        log.warning("could not record the end of %s; a later message will redo it", registration.key)
        return None
    if ended is not None:
        refresh_listing(deps.store, ended)
        log.info("registration %s: %s (%s)", ended.key, ended.state.value, ended.message)
    return ended


def _end_unheld(deps: Dependencies, registration: Registration, ending: Ending) -> Registration | None:
    for _ in range(_ATTEMPTS):
        fresh = deps.store.get(registration.owner, registration.name, registration.version)
        if (
            fresh is None
            or fresh.registration_id != registration.registration_id
            or fresh.state is not State.IN_PROGRESS
            or fresh.lease_live(deps.now())
        ):
            return None  # gone, ended, or a worker is making progress
        try:
            ending(fresh)
        except IllegalTransition:
            return None
        try:
            deps.store.replace(fresh)
            return fresh
        except ConcurrentUpdate:
            continue
    raise ConcurrentUpdate()


def fail(
    deps: Dependencies, registration: Registration, message: str, *, lease: str | None
) -> Registration | None:
    now = deps.now()
    return conclude(deps, registration, lambda r: r.fail(now, message), lease=lease)


def finish(
    deps: Dependencies, registration: Registration, message: str, *, lease: str
) -> Registration | None:
    now = deps.now()
    return conclude(deps, registration, lambda r: r.finish(now, message), lease=lease)
