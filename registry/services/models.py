"""Find, read, update, delete and clone models, with visibility enforced in one place.

A private model exists only for its owner: for everyone else every function here answers exactly
as for a model that does not exist (None / NotVisible).
"""

from __future__ import annotations

import base64
import hashlib
import heapq
import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from registry.identity import Principal
from registry.ports import JobQueue, ModelFiles, RegistrationStore
from registry.records import (
    ConcurrentUpdate,
    FileProgress,
    ModelFilter,
    ModelSummary,
    Registration,
    State,
    StorageUnavailable,
    sort_key,
    utcnow,
)
from registry.sealing import Sealer
from registry.services.catalog import refresh_listing, unlist
from registry.services.registration import (
    Conflict,
    Unavailable,
    job_for,
    new_registration,
    public_document,
    record_new,
    request_context,
    sealing_binding,
    secrets_of,
)
from registry.settings import Settings
from registry.validation import (
    CloneRequest,
    FieldError,
    InvalidRequest,
    RegistrationRequest,
    RequestContext,
    UpdateRequest,
    parse_registration,
    parse_with,
    redact_url,
    validate_identifiers,
)

log = logging.getLogger(__name__)

DEFAULT_PAGE = 100
MAX_PAGE = 1000
MAX_INDEX_BYTES = 1024 * 1024
CLONE_SOURCE_TTL = timedelta(days=2)  # the parent's files must stay readable for the whole copy


class NotVisible(Exception):
    """No such model for this caller (it may exist, private to someone else: we never say)."""


@contextmanager
def _storage() -> Iterator[None]:
    try:
        yield
    except StorageUnavailable as error:
        raise Unavailable("the registry's storage is unavailable; retry later") from error


def find_visible(
    store: RegistrationStore, caller: Principal, name: str, version: str, owner: str
) -> Registration:
    validate_identifiers(name=name, version=version, owner=owner)
    with _storage():
        registration = store.get(owner, name, version)
    if registration is None or not registration.visible_to(caller.id):
        raise NotVisible()
    return registration


def find_own(store: RegistrationStore, caller: Principal, name: str, version: str) -> Registration:
    return find_visible(store, caller, name, version, caller.id)


# -- listing ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    models: list[ModelSummary]
    continuation: str | None


def _filters_digest(filters: ModelFilter) -> str:
    return hashlib.sha256(repr(filters).encode()).hexdigest()[:16]


def _encode_token(own_after: str, public_after: str, filters: ModelFilter) -> str:
    raw = json.dumps({"o": own_after, "p": public_after, "f": _filters_digest(filters)})
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_token(token: str, filters: ModelFilter) -> tuple[str, str]:
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        own_after, public_after, digest = str(data["o"]), str(data["p"]), str(data["f"])
    except (ValueError, KeyError, TypeError):
        raise InvalidRequest([FieldError("continuation", "is not a token this API issued")]) from None
    if digest != _filters_digest(filters):
        raise InvalidRequest([FieldError("continuation", "was issued for other filters")])
    return own_after, public_after


def list_models(
    store: RegistrationStore, caller: Principal, filters: ModelFilter, limit: int, continuation: str | None
) -> Page:
    """Every public model that finished once plus all the caller's own, in (name, version, owner)
    order, one page at a time. The token holds the last key seen in each of the two sources, so
    a page costs what the page holds, and models inserted meanwhile never shift what follows."""
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidRequest([FieldError("limit", f"must be between 1 and {MAX_PAGE}")])
    own_after, public_after = _decode_token(continuation, filters) if continuation else ("", "")
    streams: list[Iterator[ModelSummary]] = []
    if filters.owner in (None, caller.id):
        streams.append(store.own_models(caller.id, own_after, filters))
    if filters.owner != caller.id:
        streams.append(store.public_models(public_after, filters, exclude_owner=caller.id))
    merged = heapq.merge(*streams, key=lambda summary: summary.sort_key)
    if filters.language is not None:
        wanted = filters.language.lower()
        merged = (m for m in merged if wanted in m.languages)
    models: list[ModelSummary] = []
    more = False
    with _storage():
        for summary in merged:
            if len(models) == limit:
                more = True
                break
            models.append(summary)
            if summary.owner == caller.id:
                own_after = sort_key(summary.name, summary.version)
            else:
                public_after = summary.sort_key
    return Page(models, _encode_token(own_after, public_after, filters) if more else None)


# -- reading ------------------------------------------------------------------------------------


def files_of(store: RegistrationStore, registration: Registration) -> list[FileProgress]:
    with _storage():
        progress = {p.target: p for p in store.files(registration)}
    return [progress.get(name) or FileProgress(index=-1, target=name) for name in registration.file_names]


def index_page(files: ModelFiles, registration: Registration) -> bytes | None:
    """The model's index page, or None while it has none to show."""
    target = registration.document.get("model_metainfo", {}).get("index_page_file")
    if not target:
        return None
    with _storage():
        return files.read(registration.blob_path(target), MAX_INDEX_BYTES)


def file_url(files: ModelFiles, registration: Registration, path: str, ttl: timedelta) -> str:
    """A short-lived read-only URL of one registered file (the previous version during an update)."""
    with _storage():
        if path not in registration.file_names or not files.exists(registration.blob_path(path)):
            raise NotVisible()
        return files.read_url(registration.blob_path(path), ttl)


# -- changing -----------------------------------------------------------------------------------


def _change_record(caller: Principal, at: datetime, changes: dict[str, Any]) -> dict[str, Any]:
    return {"by": caller.id, "by_name": caller.name, "at": at.isoformat(), "changes": changes}


def update_model(
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
    """Apply a PATCH to the caller's own model; raises NotVisible, InvalidRequest, Conflict, Unavailable.

    A worker checkpointing the same record meanwhile is not a conflict: the change is re-applied
    to the fresh record (up to a few times).
    """
    registration = find_own(store, caller, name, version)
    context = request_context(name, version, caller, settings, frozenset(registration.file_names))
    update: UpdateRequest = parse_with(UpdateRequest, body, context)
    config = update.config.model_dump(exclude_unset=True) if update.config else {}
    config = {key: value for key, value in config.items() if value is not None}
    metainfo = update.model_metainfo or {}
    files = update.model_files or {}
    if not (config or metainfo or files):
        raise InvalidRequest(
            [FieldError("body", "nothing to change: give model_config, model_metainfo or model_files")]
        )
    for _ in range(3):
        changes = _apply_update(registration, config, metainfo, files, context)
        if not changes:
            return registration
        if files:
            if registration.state is State.IN_PROGRESS:
                raise Conflict("the model's files are being copied; update its files once that is done")
            _stage_new_files(registration, files, sealer=sealer)
        registration.updated_at = now()
        registration.last_change = change = _change_record(caller, registration.updated_at, changes)
        try:
            _save_update(
                registration, change, store, becomes_private="private" in changes and registration.private
            )
            break
        except ConcurrentUpdate:
            registration = find_own(store, caller, name, version)
    else:
        raise Conflict("the model kept changing while it was being updated; retry")
    if files:
        try:
            queue.send(job_for(registration, "update", int(registration.updated_at.timestamp())))
        except StorageUnavailable:  # the sweep picks it up: the update is recorded
            log.warning("could not enqueue the update of %s; the sweep will", registration.key)
    return registration


def _apply_update(
    registration: Registration,
    config: dict[str, Any],
    metainfo: dict[str, Any],
    files: dict[str, str],
    context: RequestContext,
) -> dict[str, Any]:
    """Change the record in memory; returns what changed (empty if nothing would)."""
    changes: dict[str, Any] = {}
    document = registration.document
    if "description" in config and config["description"] != registration.description:
        changes["description"] = {"from": registration.description, "to": config["description"]}
        registration.description = document["model_config"]["description"] = config["description"]
    if "private" in config and config["private"] != registration.private:
        changes["private"] = {"from": registration.private, "to": config["private"]}
        registration.private = document["model_config"]["private"] = config["private"]
    if metainfo:
        current = document.get("model_metainfo", {})
        merged = {**current, **metainfo}
        # Validated as at registration, knowing the files this PATCH adds.
        checked = parse_registration(
            {"model_config": document["model_config"], "model_files": files, "model_metainfo": merged},
            context,
        ).model_metainfo.model_dump(mode="json", exclude_none=True)
        changed = sorted(key for key in set(checked) | set(current) if checked.get(key) != current.get(key))
        if changed:
            document["model_metainfo"] = checked
            changes["model_metainfo"] = changed
    if files:
        changes["model_files"] = sorted(files)
    return changes


def _save_update(
    registration: Registration, change: dict[str, Any], store: RegistrationStore, *, becomes_private: bool
) -> None:
    with _storage():
        if becomes_private:  # off the list before and after: never listed while private
            unlist(store, registration)
        store.replace(registration)
        store.record_change(registration, change)
        if becomes_private:
            unlist(store, registration)
        else:
            refresh_listing(store, registration)


def _stage_new_files(registration: Registration, sources: dict[str, str], *, sealer: Sealer) -> None:
    """Record new sources; the worker copies them while the current files stay served."""
    secrets = sealer.unseal(registration.sealed, sealing_binding(registration))
    # Files that failed before are retried with the new ones: keep their sources too.
    secrets["model_files"] = {**secrets.get("model_files", {}), **sources}
    registration.sealed = sealer.seal(secrets, sealing_binding(registration))
    for target, url in sources.items():
        registration.document["model_files"][target] = redact_url(url)
        if target not in registration.file_names:
            registration.file_names.append(target)  # appended: file progress is keyed by position
    # The worker re-copies these (and resets their progress first): recorded in the same write
    # as everything else, so an update is either recorded whole or not at all.
    registration.refresh_files = sorted({*registration.refresh_files, *sources})
    registration.state = State.IN_PROGRESS
    registration.message = f"Updating {len(sources)} file{'s' * (len(sources) != 1)}"
    registration.picked_up = False


def delete_model(
    *, name: str, version: str, caller: Principal, store: RegistrationStore, files: ModelFiles
) -> None:
    """Remove the caller's model: its listing, records and blobs. A copy in flight stops at its
    next checkpoint (its record is gone) and a later job message for it does nothing."""
    registration = find_own(store, caller, name, version)
    with _storage():
        for _ in range(5):  # a worker checkpointing the record meanwhile is no reason to give up
            try:
                store.forget(registration)
                break
            except ConcurrentUpdate:
                registration = find_own(store, caller, name, version)
        else:
            raise Conflict("the model kept changing while it was being deleted; retry")
        files.delete_prefix(registration.blob_path(""))


def clone_model(
    *,
    body: Any,
    name: str,
    version: str,
    caller: Principal,
    store: RegistrationStore,
    queue: JobQueue,
    files: ModelFiles,
    sealer: Sealer,
    settings: Settings,
    now: Callable[[], datetime] = utcnow,
) -> Registration:
    """A new model of the caller's, copied server-side from the registry's own copy of a parent."""
    validate_identifiers(name=name, version=version)
    base = request_context(name, version, caller, settings)
    clone: CloneRequest = parse_with(CloneRequest, body, base)
    try:
        parent = find_visible(store, caller, name, clone.parent_version, clone.parent_owner)
    except (NotVisible, InvalidRequest):
        raise NotVisible() from None
    if not parent.finished_once:
        raise NotVisible()
    ignored = set(clone.ignore_files or ())
    unknown = sorted(ignored - set(parent.file_names))
    if unknown:
        raise InvalidRequest([FieldError("ignore_files", f"not files of the parent: {', '.join(unknown)}")])
    inherited = [f for f in parent.file_names if f not in ignored and f not in (clone.model_files or {})]
    config = {**parent.document["model_config"], **(clone.model_config_overrides or {})}
    config.setdefault("private", True)
    if "private" not in (clone.model_config_overrides or {}):
        config["private"] = True  # a new model is private until its owner says otherwise
    for section in ("inference_properties", "training_properties"):
        registry = config.get(section, {}).get("docker_registry")
        if registry is not None and "password" not in registry:
            registry.pop("password", None)
    merged_body: dict[str, Any] = {
        "model_config": config,
        "model_files": dict(clone.model_files or {}),
        "model_metainfo": {**parent.document["model_metainfo"], **(clone.model_metainfo or {})},
    }
    if clone.private_packages:
        merged_body["private_packages"] = clone.private_packages
    request: RegistrationRequest = parse_registration(
        merged_body, request_context(name, version, caller, settings, frozenset(inherited))
    )
    digest = sealer.digest({"clone": clone.model_dump(mode="json", by_alias=True)})
    registration = new_registration(
        request, name=name, version=version, caller=caller, digest=digest, now=now()
    )
    registration.parent = {"name": parent.name, "version": parent.version, "owner": parent.owner}
    with _storage():
        sources = {f: files.read_url(parent.blob_path(f), CLONE_SOURCE_TTL) for f in inherited}
    sources |= request.model_files
    registration.file_names = sorted(sources)
    registration.document = public_document(request)
    registration.document["model_files"] = {
        f: (parent.document["model_files"].get(f, "") if f in inherited else redact_url(sources[f]))
        for f in registration.file_names
    }
    secrets = secrets_of(request)
    secrets["model_files"] = sources
    registration.sealed = sealer.seal(secrets, sealing_binding(registration))
    return record_new(registration, store=store, queue=queue, settings=settings, now=now)


def model_view(registration: Registration, progress: list[FileProgress]) -> dict[str, Any]:
    """GET /model/{name}/{version}/{owner}: what a reader sees (never a secret)."""
    return {
        "name": registration.name,
        "version": registration.version,
        "owner": registration.owner,
        "owner_name": registration.owner_name,
        "organization": None,
        "type": registration.model_type,
        "description": registration.description,
        "private": registration.private,
        "state": registration.state.value,
        "message": registration.message,
        "parent_model": registration.parent,
        "model_config": registration.document.get("model_config", {}),
        "model_metainfo": registration.document.get("model_metainfo", {}),
        "files": [
            {
                "name": p.target,
                "size": p.size,
                "content_md5": p.content_md5 or None,
                "state": p.state.value,
            }
            for p in progress
        ],
        "created_at": registration.created_at.isoformat(),
        "updated_at": registration.updated_at.isoformat(),
        "last_change": registration.last_change,
    }
