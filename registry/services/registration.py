"""Accept a registration: validate, record it, enqueue its copy job; replays are safe."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from registry.domain.errors import (
    AlreadyExists,
    ConcurrentUpdate,
    IllegalTransition,
    RecordTooLarge,
    StorageUnavailable,
)
from registry.domain.events import Event, EventType
from registry.domain.jobs import CopyJob
from registry.domain.model import ModelKey, Registration
from registry.domain.vocabulary import State
from registry.identity import Principal
from registry.sealing import SealedUnreadable
from registry.services import lifecycle
from registry.services.deletion import finish_deletion
from registry.services.dependencies import Dependencies
from registry.settings import Settings
from registry.sources import redact_url
from registry.validation import (
    RegistrationRequest,
    RequestContext,
    digests_of,
    parse_registration,
    sources_of,
)

log = logging.getLogger(__name__)


class Conflict(Exception):
    """The request conflicts with the model's current state (409)."""


class Unavailable(Exception):
    """A storage dependency failed; nothing half-done was left behind. Retry later (503)."""


class TooMany(Exception):
    """Over a quota or rate limit (429): retry after `retry_after` seconds."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class TooLarge(Exception):
    """The registration cannot be stored: over a storage limit (413)."""


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
        "model_files": {target: redact_url(url) for target, url in sources_of(request.model_files).items()},
        "model_metainfo": request.model_metainfo.model_dump(mode="json", exclude_none=True),
    }
    if request.private_packages:
        document["private_packages"] = [redact_url(url) for url in request.private_packages]
    expected = digests_of(request.model_files)
    if expected:
        document["expected_sha256"] = expected
    return document


def _hashed(url: str) -> str:
    # A SAS signature is 256 random bits: its hash can be kept without revealing it.
    return "sha256:" + hashlib.sha256(url.encode()).hexdigest()


def digest_input(value: dict[str, Any]) -> dict[str, Any]:
    """What identifies "the same request" for replays: the normalized request, with every source
    URL replaced by its hash. It is kept sealed with the registration (so that a new sealing key
    can re-key the digest), and it outlives the sources themselves."""
    result = dict(value)
    if isinstance(result.get("model_files"), dict):
        result["model_files"] = {
            k: _hashed(v) if isinstance(v, str) else {**v, "url": _hashed(v["url"])}
            for k, v in result["model_files"].items()
        }
    if isinstance(result.get("private_packages"), list):
        result["private_packages"] = [_hashed(v) for v in result["private_packages"]]
    return result


def request_digest_input(request: RegistrationRequest) -> dict[str, Any]:
    return digest_input(
        request.model_dump(mode="json", by_alias=True, exclude={"config": {"name", "version", "owner"}})
    )


@dataclass(frozen=True)
class Secrets:
    """What a registration keeps sealed: its sources and other write-only values."""

    model_files: dict[str, str]
    private_packages: list[str]
    docker_passwords: dict[str, str]
    digest_input: dict[str, Any]
    inherited: dict[str, dict[str, Any]] | None = None  # a clone's files, pinned in its parent
    parent_registration_id: str = ""

    @classmethod
    def of(cls, request: RegistrationRequest, digest_input: dict[str, Any]) -> Secrets:
        passwords = {
            section: props.docker_registry.password
            for section, props in (
                ("inference_properties", request.config.inference_properties),
                ("training_properties", request.config.training_properties),
            )
            if props is not None and props.docker_registry is not None and props.docker_registry.password
        }
        return cls(
            sources_of(request.model_files), list(request.private_packages or []), passwords, digest_input
        )

    def as_dict(self) -> dict[str, Any]:
        value: dict[str, Any] = {
            "model_files": self.model_files,
            "private_packages": self.private_packages,
            "docker_passwords": self.docker_passwords,
            "digest_input": self.digest_input,
        }
        if self.inherited is not None:
            value["inherited"] = self.inherited
            value["parent_registration_id"] = self.parent_registration_id
        return value


def seal(deps: Dependencies, registration: Registration, secrets: dict[str, Any]) -> None:
    registration.sealed = deps.sealer.seal(secrets, sealing_binding(registration))


def unseal(deps: Dependencies, registration: Registration) -> dict[str, Any]:
    """The registration's secrets; Unavailable if no configured key opens them."""
    if not registration.sealed:
        return {}
    try:
        value: dict[str, Any] = deps.sealer.unseal(registration.sealed, sealing_binding(registration))
    except SealedUnreadable:
        raise Unavailable(
            "the registry cannot open this model's sealed sources: the key they were sealed with is "
            "no longer configured (REGISTRY_SEALING_PREVIOUS_KEYS)"
        ) from None
    return value


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
        max_files=settings.quotas.max_files,
    )


def new_registration(
    request: RegistrationRequest, *, name: str, version: str, caller: Principal, deps: Dependencies
) -> tuple[Registration, dict[str, Any]]:
    """An InProgress registration of the request, its digest made and its secrets sealed; and the
    digest's input, which tells a replay of the same request."""
    registration = Registration.accept(
        ModelKey(caller.id, name, version),
        owner_name=caller.name,
        document=public_document(request),
        now=deps.now(),
    )
    secrets = Secrets.of(request, request_digest_input(request))
    registration.body_digest = deps.sealer.digest(secrets.digest_input)
    seal(deps, registration, secrets.as_dict())
    return registration, secrets.digest_input


def register(
    deps: Dependencies, caller: Principal, name: str, version: str, body: Any, *, bulk: bool = False
) -> Registration:
    """Record a registration and enqueue its copy; replaying the same body is safe.

    Raises InvalidRequest (400), Conflict (409), TooLarge (413), TooMany (429) or Unavailable (503).
    """
    request = parse_registration(body, request_context(name, version, caller, deps.settings))
    registration, replay_key = new_registration(request, name=name, version=version, caller=caller, deps=deps)
    registration.record(EventType.REGISTERED, registration.created_at, {"by": caller.id})
    return record_new(deps, registration, replay_key, quota=not bulk)


def _over_in_progress_quota(deps: Dependencies, owner: str) -> bool:
    limit = deps.settings.quotas.max_in_progress
    return deps.admission.in_progress(owner, lambda: deps.store.count_in_progress(owner, limit)) >= limit


def record_new(
    deps: Dependencies, registration: Registration, replay_key: dict[str, Any], *, quota: bool = True
) -> Registration:
    """Insert a new registration and enqueue its job, or treat it as a replay of the existing one
    (`replay_key`: the digest input of the request)."""
    try:
        try:
            # Insert first: a new registration (the common case) costs one write and one enqueue.
            if quota and _over_in_progress_quota(deps, registration.owner):
                if deps.store.get(registration.owner, registration.name, registration.version) is None:
                    raise TooMany(
                        f"you have {deps.settings.quotas.max_in_progress} registrations in progress, the "
                        "most one owner may have (REGISTRY_MAX_IN_PROGRESS); retry when some have finished",
                        retry_after=30,
                    )
                raise AlreadyExists()  # a replay is answered as one, whatever the quota
            recorded = list(registration.events)  # written with it (the outbox)
            deps.store.insert(registration)
        except AlreadyExists:
            return _existing(deps, registration, replay_key, quota=quota)
    except StorageUnavailable as error:
        raise Unavailable("the registry's storage is unavailable; retry later") from error
    except RecordTooLarge as error:
        raise TooLarge(f"the registration is too large to store: {error}") from None
    _enqueue_or_undo(deps, registration, recorded)
    deps.admission.accepted(registration.owner)
    log.info("registration accepted: %s (%d files)", registration.key, len(registration.file_names))
    return registration


def _existing(
    deps: Dependencies, registration: Registration, replay_key: dict[str, Any], *, quota: bool
) -> Registration:
    existing = deps.store.get(registration.owner, registration.name, registration.version)
    if existing is None:  # deleted in between
        raise Unavailable("the registration changed while it was being recorded; retry")
    if existing.is_placeholder:
        deps.store.delete(existing)  # what an invalid bulk line left: this request replaces it
        return record_new(deps, registration, replay_key, quota=quota)
    if existing.gone:
        finish_deletion(deps, existing)  # a delete that did not finish: finish it, then register
        return record_new(deps, registration, replay_key, quota=quota)
    return _replay(deps, existing, replay_key)


def _enqueue_or_undo(deps: Dependencies, registration: Registration, recorded: list[Event]) -> None:
    try:
        deps.queue.send(job_for(registration))
    except StorageUnavailable as error:
        try:
            # With its events: a registration undone was never accepted, so nobody hears of it.
            deps.store.delete(registration, unrecord=recorded)
        except Exception:  # the sweep re-enqueues it if it stays
            log.exception("could not undo registration %s after a failed enqueue", registration.key)
        raise Unavailable("the job queue is unavailable; nothing was registered, retry later") from error


def _same_request(deps: Dependencies, existing: Registration, replay_key: dict[str, Any]) -> bool:
    """Whether the request repeats the one `existing` was registered with."""
    same = deps.sealer.digest_matches(existing.body_digest, replay_key)
    if same is None:
        raise Conflict(
            f"model {existing.name} version {existing.version} is already registered by you; its request "
            "can no longer be compared (it was sealed with a retired key): register a new version instead"
        )
    return same


def _replay(deps: Dependencies, existing: Registration, replay_key: dict[str, Any]) -> Registration:
    if not _same_request(deps, existing, replay_key):
        raise Conflict(
            f"model {existing.name} version {existing.version} is already registered by you "
            "with a different request; register a new version instead"
        )
    if existing.state is State.FINISHED:
        return existing
    if existing.state is State.FAILED:
        return _restart(deps, existing)
    return _nudge(deps, existing)


def _restart(deps: Dependencies, existing: Registration) -> Registration:
    """Same body again after a failure: resume it (finished files are kept)."""
    try:
        existing.restart(deps.now(), "Registration restarted by a repeated request")
        deps.store.replace(existing)
    except (ConcurrentUpdate, IllegalTransition):
        raise Unavailable("the registration is being updated; retry") from None
    try:
        _send(deps, job_for(existing, "restart", existing.attempt))
    except Unavailable:
        lifecycle.fail(deps, existing, "Restart failed: the job queue is unavailable", lease=None)
        raise
    return existing


def _nudge(deps: Dependencies, existing: Registration) -> Registration:
    """InProgress: a worker may already have it. Only a job that never started or went quiet
    (the app died between recording and enqueuing, or mid-copy) needs a new message."""
    now = deps.now()
    quiet_since = now - timedelta(seconds=deps.settings.stale_after_seconds)
    if existing.picked_up and existing.last_progress_at >= quiet_since:
        return existing
    # Touch the record before sending: a concurrent undo of a failed enqueue (a delete on the
    # ETag it read) then fails instead of deleting what this replay answers 202 for.
    sequence = int(existing.last_progress_at.timestamp())  # replays share one message id
    existing.touch(now)
    try:
        deps.store.replace(existing)
    except ConcurrentUpdate:
        if deps.store.get(existing.owner, existing.name, existing.version) is None:
            raise Unavailable("the registration changed while it was being recorded; retry") from None
        return existing  # a worker (or another replay) moved it on meanwhile
    _send(deps, job_for(existing, "replay", sequence))
    return existing


def _send(deps: Dependencies, job: CopyJob) -> None:
    try:
        deps.queue.send(job)
    except StorageUnavailable as error:
        raise Unavailable("the job queue is unavailable; retry later") from error
