"""What the queue-triggered worker does with a job message, whichever queue delivered it."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from datetime import datetime

from registry.identity import Principal
from registry.ports import BlobCopier, JobQueue, RegistrationStore
from registry.records import (
    INVALID_REGISTRATION,
    AlreadyExists,
    ConcurrentUpdate,
    CopyJob,
    RegisterJob,
    Registration,
    State,
    StorageUnavailable,
    parse_job,
    utcnow,
)
from registry.sealing import Sealer
from registry.services.copying import CopyPolicy, process_job
from registry.services.registration import Conflict, Unavailable, register
from registry.settings import Settings
from registry.validation import InvalidRequest, is_identifier

log = logging.getLogger(__name__)


class UnusableMessage(Exception):
    """Retrying cannot help: the message ends in the poison (or dead-letter) queue."""


def handle_message(
    body: bytes | str,
    *,
    store: RegistrationStore,
    queue: JobQueue,
    copier: BlobCopier,
    sealer: Sealer,
    settings: Settings,
    policy: CopyPolicy,
    redelivered: bool,
    now: Callable[[], datetime] = utcnow,
) -> str:
    """Run one job message; returns what happened. Raises UnusableMessage or transient errors."""
    try:
        job = parse_job(body)
    except ValueError as problem:
        raise UnusableMessage(str(problem)) from None
    if isinstance(job, CopyJob):
        outcome = process_job(
            job,
            store=store,
            queue=queue,
            copier=copier,
            sealer=sealer,
            policy=policy,
            now=now,
            redelivered=redelivered,
        )
        return outcome.value
    return register_from_queue(job, store=store, queue=queue, sealer=sealer, settings=settings, now=now)


def register_from_queue(
    job: RegisterJob,
    *,
    store: RegistrationStore,
    queue: JobQueue,
    sealer: Sealer,
    settings: Settings,
    now: Callable[[], datetime] = utcnow,
) -> str:
    """A bulk producer's registration: validated exactly as the HTTP PUT, then recorded and copied.

    Whoever holds the queue's send right can enqueue: only owners the settings allow for bulk are
    accepted, so the queue is no way around identity.
    """
    if not all(is_identifier(value) for value in (job.owner, job.name, job.version)):
        raise UnusableMessage("a bulk registration needs a valid owner, name and version")
    if job.owner not in settings.bulk_owners:
        raise UnusableMessage(
            f"owner {job.owner!r} is not allowed to register in bulk (REGISTRY_BULK_OWNERS)"
        )
    caller = Principal(job.owner, job.owner_name or job.owner)
    try:
        registration = register(
            body=job.body,
            name=job.name,
            version=job.version,
            caller=caller,
            store=store,
            queue=queue,
            sealer=sealer,
            settings=settings,
            now=now,
        )
    except Conflict as conflict:
        log.warning("bulk registration %s/%s/%s refused: %s", job.owner, job.name, job.version, conflict)
        return "conflict"
    except InvalidRequest as problem:
        _record_invalid(job, str(problem), store=store, sealer=sealer, now=now)
        return "invalid"
    except Unavailable as unavailable:
        raise StorageUnavailable(str(unavailable)) from unavailable
    return registration.state.value


def _record_invalid(
    job: RegisterJob, reason: str, *, store: RegistrationStore, sealer: Sealer, now: Callable[[], datetime]
) -> None:
    """An invalid bulk registration is recorded Failed with its reason, for its owner to read."""
    moment = now()
    failed = Registration(
        owner=job.owner,
        name=job.name,
        version=job.version,
        owner_name=job.owner_name or job.owner,
        registration_id=INVALID_REGISTRATION,
        state=State.FAILED,
        message=f"Invalid registration: {reason}",
        private=True,
        model_type="",
        description="",
        body_digest=sealer.digest({"invalid": job.body}),
        document={},
        file_names=[],
        sealed=b"",
        created_at=moment,
        updated_at=moment,
        last_progress_at=moment,
    )
    # If a registration of that name and version exists already, it stays as it is.
    with contextlib.suppress(AlreadyExists, ConcurrentUpdate):
        store.insert(failed)


def fail_after_last_delivery(
    body: bytes | str, reason: str, *, store: RegistrationStore, now: Callable[[], datetime] = utcnow
) -> None:
    """Service Bus dead-letters a message after its last delivery fails: record why first."""
    try:
        job = parse_job(body)
    except ValueError:
        return
    if not isinstance(job, CopyJob):
        return
    registration = store.get(job.owner, job.name, job.version)
    if registration is None or registration.registration_id != job.registration_id:
        return
    if registration.state is not State.IN_PROGRESS:
        return
    registration.state = State.FAILED
    registration.message = f"Copy failed after repeated attempts: {reason}"
    registration.updated_at = now()
    try:
        store.replace(registration)
    except ConcurrentUpdate:
        log.warning("could not record the failure of %s", registration.key)
