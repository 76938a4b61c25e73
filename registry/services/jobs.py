"""What the queue-triggered worker does with a job message, whichever queue delivered it."""

from __future__ import annotations

import contextlib
import logging

from registry.domain.errors import AlreadyExists, ConcurrentUpdate, RecordTooLarge, StorageUnavailable
from registry.domain.jobs import CopyJob, DeliveryJob, DispatchJob, RegisterJob, parse_job
from registry.domain.model import ModelKey, Registration
from registry.identity import Principal
from registry.services import events, lifecycle, webhook_delivery
from registry.services.copying import process_job
from registry.services.dependencies import Dependencies
from registry.services.registration import Conflict, TooLarge, TooMany, Unavailable, register
from registry.validation import InvalidRequest, is_identifier

log = logging.getLogger(__name__)


class UnusableMessage(Exception):
    """Retrying cannot help: the message ends in the poison (or dead-letter) queue."""


def handle_message(body: bytes | str, deps: Dependencies, *, redelivered: bool) -> str:
    """Run one job message; returns what happened. Raises UnusableMessage or transient errors."""
    try:
        job = parse_job(body)
    except ValueError as problem:
        raise UnusableMessage(str(problem)) from None
    if isinstance(job, DispatchJob):  # a sink that cannot take them raises: the message is retried
        return f"dispatched {events.dispatch_pending(deps, job.owner)}"
    if isinstance(job, DeliveryJob):  # one webhook attempt: storage trouble raises, and it is retried
        return f"webhook {webhook_delivery.deliver(deps, job)}"
    if isinstance(job, CopyJob):
        # Events are delivered when a job starts (what the HTTP side recorded) and after it.
        events.dispatch_quietly(deps, job.owner)
        outcome = process_job(job, deps, redelivered=redelivered).value
    else:
        outcome = register_from_queue(job, deps)
    events.dispatch_quietly(deps, job.owner)
    return outcome


def register_from_queue(job: RegisterJob, deps: Dependencies) -> str:
    """A bulk producer's registration: validated exactly as the HTTP PUT, then recorded and copied.

    Whoever holds the queue's send right can enqueue: only owners the settings allow for bulk are
    accepted, so the queue is no way around identity.
    """
    if not all(is_identifier(value) for value in (job.owner, job.name, job.version)):
        raise UnusableMessage("a bulk registration needs a valid owner, name and version")
    if job.owner not in deps.settings.bulk_owners:
        raise UnusableMessage(
            f"owner {job.owner!r} is not allowed to register in bulk (REGISTRY_BULK_OWNERS)"
        )
    caller = Principal(job.owner, job.owner_name or job.owner)
    try:
        registration = register(deps, caller, job.name, job.version, job.body, bulk=True)
    except Conflict as conflict:
        log.warning("bulk registration %s/%s/%s refused: %s", job.owner, job.name, job.version, conflict)
        return "conflict"
    except (InvalidRequest, TooLarge) as problem:
        _record_invalid(deps, job, str(problem))
        return "invalid"
    except (Unavailable, TooMany) as unavailable:
        raise StorageUnavailable(str(unavailable)) from unavailable
    return registration.state.value


def _record_invalid(deps: Dependencies, job: RegisterJob, reason: str) -> None:
    """An invalid bulk registration is recorded Failed with its reason, for its owner to read."""
    failed = Registration.invalid(
        ModelKey(job.owner, job.name, job.version),
        owner_name=job.owner_name or job.owner,
        reason=reason,
        now=deps.now(),
    )
    failed.body_digest = deps.sealer.digest({"invalid": job.body})
    # If a registration of that name and version exists already, it stays as it is.
    with contextlib.suppress(AlreadyExists, ConcurrentUpdate, RecordTooLarge):
        deps.store.insert(failed)


def fail_after_last_delivery(body: bytes | str, reason: str, deps: Dependencies) -> None:
    """Service Bus dead-letters a message after its last delivery fails: record why first."""
    if webhook_delivery.give_up_poisoned(body, deps, reason):
        return
    try:
        job = parse_job(body)
    except ValueError:
        return
    if not isinstance(job, CopyJob):
        return
    registration = deps.store.get(job.owner, job.name, job.version)
    if registration is None or registration.registration_id != job.registration_id:
        return
    lifecycle.fail(deps, registration, f"Copy failed after repeated attempts: {reason}", lease=None)
    events.dispatch_quietly(deps, registration.owner)
