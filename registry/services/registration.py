"""Accept a registration: validate, record it, enqueue its copy job; report its status."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from registry.identity import Principal
from registry.ports import JobQueue, RegistrationStore
from registry.records import (
    INVALID_REGISTRATION,
    AlreadyExists,
    ConcurrentUpdate,
    CopyJob,
    Registration,
    State,
    StorageUnavailable,
    utcnow,
)
from registry.sealing import Sealer
from registry.settings import Settings
from registry.validation import RegistrationRequest, RequestContext, parse_registration, redact_url

log = logging.getLogger(__name__)


class Conflict(Exception):
    """The caller already registered this name and version with a different body."""


class Unavailable(Exception):
    """A storage dependency failed; nothing half-done was left behind. Retry later."""


def job_for(registration: Registration, purpose: str = "start", sequence: int = 0) -> CopyJob:
    return CopyJob(
        registration.owner,
        registration.name,
        registration.version,
        registration.registration_id,
        purpose,
        sequence,
    )


def sealing_binding(registration: Registration) -> str:
    return f"{registration.key}:{registration.registration_id}"


def public_document(request: RegistrationRequest) -> dict[str, Any]:
    config = request.config.model_dump(mode="json", exclude_none=True, exclude={"name", "version", "owner"})
    for section in ("inference_properties", "training_properties"):
        config.get(section, {}).get("docker_registry", {}).pop("password", None)
    document: dict[str, Any] = {
        "model_config": config,
        "model_files": {target: redact_url(url) for target, url in request.model_files.items()},
        "model_metainfo": request.model_metainfo.model_dump(mode="json", exclude_none=True),
    }
    if request.private_packages:
        document["private_packages"] = [redact_url(url) for url in request.private_packages]
    return document


def secrets_of(request: RegistrationRequest) -> dict[str, Any]:
    passwords = {
        section: props.docker_registry.password
        for section, props in (
            ("inference_properties", request.config.inference_properties),
            ("training_properties", request.config.training_properties),
        )
        if props is not None and props.docker_registry is not None and props.docker_registry.password
    }
    return {
        "model_files": request.model_files,
        "private_packages": request.private_packages or [],
        "docker_passwords": passwords,
    }


def request_context(
    name: str,
    version: str,
    caller: Principal,
    settings: Settings,
    existing_files: frozenset[str] = frozenset(),
) -> RequestContext:
    return RequestContext(
        name=name,
        version=version,
        owner_id=caller.id,
        owner_name=caller.name,
        file_names=frozenset(),
        allowed_source_hosts=settings.allowed_source_hosts,
        allow_insecure_sources=settings.allow_insecure_sources,
        existing_files=existing_files,
    )


def request_digest(request: RegistrationRequest, sealer: Sealer) -> str:
    """What identifies "the same request" for replays: its normalized form, keyed."""
    normalized = request.model_dump(
        mode="json", by_alias=True, exclude={"config": {"name", "version", "owner"}}
    )
    return sealer.digest(normalized)


def new_registration(
    request: RegistrationRequest,
    *,
    name: str,
    version: str,
    caller: Principal,
    digest: str,
    now: datetime,
) -> Registration:
    """An InProgress registration of the request (its secrets still to be sealed)."""
    return Registration(
        owner=caller.id,
        name=name,
        version=version,
        owner_name=caller.name,
        registration_id=uuid.uuid4().hex,
        state=State.IN_PROGRESS,
        message="Registration accepted; copying files",
        private=request.config.private,
        model_type=request.config.type,
        description=request.config.description,
        body_digest=digest,
        document=public_document(request),
        file_names=sorted(request.model_files),
        sealed=b"",
        created_at=now,
        updated_at=now,
        last_progress_at=now,
    )


def register(
    *,
    body: Any,
    name: str,
    version: str,
    caller: Principal,
    store: RegistrationStore,
    queue: JobQueue,
    sealer: Sealer,
    settings: Settings,
    now: Callable[[], datetime] = utcnow,
) -> Registration:
    """Record a registration and enqueue its copy; replaying the same body is safe.

    Raises InvalidRequest (400), Conflict (409) or Unavailable (503).
    """
    request = parse_registration(body, request_context(name, version, caller, settings))
    digest = request_digest(request, sealer)
    registration = new_registration(
        request, name=name, version=version, caller=caller, digest=digest, now=now()
    )
    registration.sealed = sealer.seal(secrets_of(request), sealing_binding(registration))
    return record_new(registration, store=store, queue=queue, settings=settings, now=now)


def record_new(
    registration: Registration,
    *,
    store: RegistrationStore,
    queue: JobQueue,
    settings: Settings,
    now: Callable[[], datetime],
) -> Registration:
    """Insert a new registration and enqueue its job, or treat it as a replay of the existing one."""
    try:
        try:
            # Insert first: a new registration (the common case) costs one write and one enqueue.
            store.insert(registration)
        except AlreadyExists:
            existing = store.get(registration.owner, registration.name, registration.version)
            if existing is not None and existing.registration_id == INVALID_REGISTRATION:
                store.delete(existing)  # what an invalid bulk line left: this request replaces it
                return record_new(registration, store=store, queue=queue, settings=settings, now=now)
            if existing is None:  # deleted in between
                raise Unavailable("the registration changed while it was being recorded; retry") from None
            return _replay(
                existing, registration.body_digest, store=store, queue=queue, settings=settings, now=now
            )
    except StorageUnavailable as error:
        raise Unavailable("the registry's storage is unavailable; retry later") from error
    _enqueue_or_undo(registration, store, queue)
    log.info("registration accepted: %s (%d files)", registration.key, len(registration.file_names))
    return registration


def _enqueue_or_undo(registration: Registration, store: RegistrationStore, queue: JobQueue) -> None:
    try:
        queue.send(job_for(registration))
    except StorageUnavailable as error:
        try:
            store.delete(registration)
        except Exception:  # the sweep re-enqueues it if it stays
            log.exception("could not undo registration %s after a failed enqueue", registration.key)
        raise Unavailable("the job queue is unavailable; nothing was registered, retry later") from error


def _replay(
    existing: Registration,
    digest: str,
    *,
    store: RegistrationStore,
    queue: JobQueue,
    settings: Settings,
    now: Callable[[], datetime],
) -> Registration:
    if existing.body_digest != digest:
        raise Conflict(
            f"model {existing.name} version {existing.version} is already registered by you "
            "with a different request; register a new version instead"
        )
    if existing.state is State.FINISHED:
        return existing
    if existing.state is State.FAILED:
        # Same body again after a failure: resume it (finished files are kept).
        existing.state = State.IN_PROGRESS
        existing.message = "Registration restarted by a repeated request"
        existing.attempt += 1
        existing.last_error = ""
        existing.picked_up = False
        existing.updated_at = existing.last_progress_at = now()
        try:
            store.replace(existing)
        except ConcurrentUpdate:
            raise Unavailable("the registration is being updated; retry") from None
        try:
            _send(job_for(existing, "restart", existing.attempt), queue)
        except Unavailable:
            existing.state, existing.message = State.FAILED, "Restart failed: the job queue is unavailable"
            try:
                store.replace(existing)
            except Exception:  # the sweep re-enqueues it if it stays InProgress
                log.exception("could not undo the restart of %s", existing.key)
            raise
        return existing
    # InProgress: a worker may already have it. Only a job that never started or went quiet
    # (the app died between recording and enqueuing, or mid-copy) needs a new message.
    quiet_since = now() - timedelta(seconds=settings.stale_after_seconds)
    if not existing.picked_up or existing.last_progress_at < quiet_since:
        # Touch the record before sending: a concurrent undo of a failed enqueue (a delete on the
        # ETag it read) then fails instead of deleting what this replay answers 202 for.
        sequence = int(existing.last_progress_at.timestamp())  # replays share one message id
        existing.last_progress_at = now()
        try:
            store.replace(existing)
        except ConcurrentUpdate:
            if store.get(existing.owner, existing.name, existing.version) is None:
                raise Unavailable("the registration changed while it was being recorded; retry") from None
            return existing  # a worker (or another replay) moved it on meanwhile
        _send(job_for(existing, "replay", sequence), queue)
    return existing


def _send(job: CopyJob, queue: JobQueue) -> None:
    try:
        queue.send(job)
    except StorageUnavailable as error:
        raise Unavailable("the job queue is unavailable; retry later") from error
