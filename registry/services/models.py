"""Find, read, update, delete and clone models, with visibility enforced in one place.

A private model exists only for its owner, and a deleted one (a tombstone) for nobody: for
everyone else every function here answers exactly as for a model that does not exist (NotVisible).
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from registry.domain.errors import (
    ConcurrentUpdate,
    IllegalTransition,
    NotFound,
    RecordTooLarge,
    StorageUnavailable,
)
from registry.domain.events import EventType
from registry.domain.listing import ModelFilter, ModelSummary, sort_key
from registry.domain.model import FileProgress, Registration
from registry.identity import Principal
from registry.sealing import SealedUnreadable
from registry.services import deletion, events
from registry.services.catalog import refresh_listing, unlist
from registry.services.dependencies import Dependencies
from registry.services.registration import (
    Conflict,
    Secrets,
    TooLarge,
    Unavailable,
    digest_input,
    job_for,
    new_registration,
    public_document,
    record_new,
    request_context,
    seal,
    unseal,
)
from registry.sources import redact_url
from registry.validation import (
    CloneRequest,
    FieldError,
    InvalidRequest,
    RequestContext,
    UpdateRequest,
    digests_of,
    inherited_name_problems,
    parse_registration,
    parse_with,
    safe_key,
    sources_of,
    validate_identifiers,
)

log = logging.getLogger(__name__)

DEFAULT_PAGE = 100
DOWNLOAD_TTL = timedelta(minutes=10)  # how long a read link of a registered file is valid
MAX_PAGE = 1000
MAX_INDEX_BYTES = 1024 * 1024


class NotVisible(Exception):
    """No such model for this caller (it may exist, private to someone else: we never say)."""


@contextmanager
def storage_failures() -> Iterator[None]:
    try:
        yield
    except StorageUnavailable as error:
        raise Unavailable("the registry's storage is unavailable; retry later") from error
    except RecordTooLarge as error:
        raise TooLarge(f"the change is too large to store: {error}") from None


def find_visible(deps: Dependencies, caller: Principal, name: str, version: str, owner: str) -> Registration:
    validate_identifiers(name=name, version=version, owner=owner)
    with storage_failures():
        registration = deps.store.get(owner, name, version)
    if registration is None or not registration.visible_to(caller.id):
        raise NotVisible()
    return registration


def find_own(deps: Dependencies, caller: Principal, name: str, version: str) -> Registration:
    return find_visible(deps, caller, name, version, caller.id)


# -- listing ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    models: list[ModelSummary]
    continuation: str | None


def _filters_key(filters: ModelFilter) -> list[Any]:
    return [None if v is None else str(v) for v in vars(filters).values()]


def _encode_token(
    deps: Dependencies, caller: Principal, own_after: str, public_after: str, filters: ModelFilter
) -> str:
    # Sealed and bound to the caller: opaque (it holds the caller's last private key seen) and
    # tamper-evident (an altered token is refused, never read as another position).
    return deps.sealer.seal_token({"o": own_after, "p": public_after, "f": _filters_key(filters)}, caller.id)


def _decode_token(deps: Dependencies, caller: Principal, token: str, filters: ModelFilter) -> tuple[str, str]:
    try:
        data = deps.sealer.open_token(token, caller.id)
        own_after, public_after, key = str(data["o"]), str(data["p"]), data["f"]
    except (SealedUnreadable, KeyError, TypeError):
        raise InvalidRequest([FieldError("continuation", "is not a token this API issued to you")]) from None
    if key != _filters_key(filters):
        raise InvalidRequest([FieldError("continuation", "was issued for other filters")])
    return own_after, public_after


def list_models(
    deps: Dependencies, caller: Principal, filters: ModelFilter, limit: int, continuation: str | None
) -> Page:
    """Every public model that finished once plus all the caller's own, in (name, version, owner)
    order, one page at a time. The token holds the last key seen in each of the two sources, so
    a page costs what the page holds, and models inserted meanwhile never shift what follows."""
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidRequest([FieldError("limit", f"must be between 1 and {MAX_PAGE}")])
    own_after, public_after = _decode_token(deps, caller, continuation, filters) if continuation else ("", "")
    streams: list[Iterator[ModelSummary]] = []
    if filters.owner in (None, caller.id):
        streams.append(deps.store.own_models(caller.id, own_after, filters, page_size=limit + 1))
    if filters.owner != caller.id:
        streams.append(
            deps.store.public_models(public_after, filters, exclude_owner=caller.id, page_size=limit + 1)
        )
    merged = heapq.merge(*streams, key=lambda summary: summary.sort_key)
    models: list[ModelSummary] = []
    more = False
    with storage_failures():
        for summary in merged:
            if len(models) == limit:
                more = True
                break
            models.append(summary)
            if summary.owner == caller.id:
                own_after = sort_key(summary.name, summary.version)
            else:
                public_after = summary.sort_key
    token = _encode_token(deps, caller, own_after, public_after, filters) if more else None
    return Page(models, token)


# -- reading ------------------------------------------------------------------------------------


def files_of(deps: Dependencies, registration: Registration) -> list[FileProgress]:
    with storage_failures():
        progress = {p.target: p for p in deps.store.files(registration)}
    return [progress.get(name) or FileProgress(index=-1, target=name) for name in registration.file_names]


def _served(deps: Dependencies, registration: Registration, target: str) -> FileProgress | None:
    """The file's row, if a verified copy of it is served (during an update: the previous one)."""
    if target not in registration.file_names:
        return None
    with storage_failures():
        row = next((p for p in deps.store.files(registration) if p.target == target), None)
    return row if row is not None and row.served else None


def index_page(deps: Dependencies, registration: Registration) -> bytes | None:
    """The model's index page, or None while it has none to show."""
    target = registration.metainfo.get("index_page_file")
    row = _served(deps, registration, target) if target else None
    if row is None:
        return None
    with storage_failures():
        return deps.files.read(registration.blob_path(row.target, row.served_generation), MAX_INDEX_BYTES)


@dataclass(frozen=True)
class FileLink:
    url: str  # short-lived, read-only
    sha256: str  # of the bytes behind it


def file_url(deps: Dependencies, registration: Registration, path: str, ttl: timedelta) -> FileLink:
    """A short-lived read-only URL of one registered file (the previous version during an update)."""
    row = _served(deps, registration, path)
    if row is None:
        raise NotVisible()
    with storage_failures():
        url = deps.files.read_url(registration.blob_path(row.target, row.served_generation), ttl)
    return FileLink(url, row.served_sha256)


# -- changing -----------------------------------------------------------------------------------


def _change_record(caller: Principal, at: datetime, changes: dict[str, Any]) -> dict[str, Any]:
    return {"by": caller.id, "by_name": caller.name, "at": at.isoformat(), "changes": changes}


@dataclass(frozen=True)
class _Update:
    config: dict[str, Any]
    metainfo: dict[str, Any]
    files: dict[str, str]  # target -> source URL
    digests: dict[str, str]  # target -> the SHA-256 the owner expects, for those given with one


def _parse_update(
    deps: Dependencies, caller: Principal, registration: Registration, body: Any
) -> tuple[_Update, RequestContext]:
    context = request_context(
        registration.name, registration.version, caller, deps.settings, frozenset(registration.file_names)
    )
    update = parse_with(UpdateRequest, body, context)
    config = update.config.model_dump(exclude_unset=True) if update.config else {}
    config = {key: value for key, value in config.items() if value is not None}
    metainfo = update.model_metainfo.changes() if update.model_metainfo else {}
    files = update.model_files or {}
    parsed = _Update(config, metainfo, sources_of(files), digests_of(files))
    if not (parsed.config or parsed.metainfo or parsed.files):
        raise InvalidRequest(
            [FieldError("body", "nothing to change: give model_config, model_metainfo or model_files")]
        )
    if len({*registration.file_names, *parsed.files}) > deps.settings.quotas.max_files:
        raise InvalidRequest(
            [FieldError("model_files", f"a model has at most {deps.settings.quotas.max_files} files")]
        )
    return parsed, context


def update_model(deps: Dependencies, caller: Principal, name: str, version: str, body: Any) -> Registration:
    """Apply a PATCH to the caller's own model; raises NotVisible, InvalidRequest, Conflict, Unavailable.

    A worker checkpointing the same record meanwhile is not a conflict: the change is re-applied
    to the fresh record (up to a few times).
    """
    registration = find_own(deps, caller, name, version)
    update, context = _parse_update(deps, caller, registration, body)
    for _ in range(3):
        changes = _apply_update(registration, update, context)
        if not changes:
            return registration
        if update.files:
            _stage_new_files(deps, caller, registration, update.files, update.digests)
        registration.updated_at = deps.now()
        registration.last_change = _change_record(caller, registration.updated_at, changes)
        described = {key: value for key, value in changes.items() if key != "model_files"}
        if described:  # new files are told by their own event (files_replaced)
            registration.record(
                EventType.UPDATED, registration.updated_at, {"by": caller.id, "changes": described}
            )
        try:
            _save_update(deps, registration)
            break
        except ConcurrentUpdate:
            registration = find_own(deps, caller, name, version)
    else:
        raise Conflict("the model kept changing while it was being updated; retry")
    if update.files:  # the worker dispatches the events when it takes the job
        try:
            deps.queue.send(job_for(registration, "update", int(registration.updated_at.timestamp())))
        except StorageUnavailable:  # the sweep picks it up: the update is recorded
            log.warning("could not enqueue the update of %s; the sweep will", registration.key)
    else:
        events.dispatch_soon(deps, registration.owner)
    return registration


def _apply_update(registration: Registration, update: _Update, context: RequestContext) -> dict[str, Any]:
    """Change the record in memory; returns what changed (empty if nothing would)."""
    changes: dict[str, Any] = {}
    document = registration.document
    config = update.config
    if "description" in config and config["description"] != registration.description:
        changes["description"] = {"from": registration.description, "to": config["description"]}
        registration.description = document["model_config"]["description"] = config["description"]
    if "private" in config and config["private"] != registration.private:
        changes["private"] = {"from": registration.private, "to": config["private"]}
        registration.private = document["model_config"]["private"] = config["private"]
    if update.metainfo:
        current = document.get("model_metainfo", {})
        merged = {**current, **update.metainfo}
        # Validated as at registration, knowing the files this PATCH adds.
        checked = parse_registration(
            {"model_config": document["model_config"], "model_files": update.files, "model_metainfo": merged},
            context,
        ).model_metainfo.model_dump(mode="json", exclude_none=True)
        changed = sorted(key for key in set(checked) | set(current) if checked.get(key) != current.get(key))
        if changed:
            document["model_metainfo"] = checked
            changes["model_metainfo"] = changed
    if update.files:
        changes["model_files"] = sorted(update.files)
    return changes


def _save_update(deps: Dependencies, registration: Registration) -> None:
    with storage_failures():
        deps.store.replace(registration)  # with its events
        # After the record: a model made private is unlisted; otherwise the list shows the change.
        if registration.listed_publicly:
            refresh_listing(deps.store, registration)
        else:
            unlist(deps.store, registration)


def _stage_new_files(
    deps: Dependencies,
    caller: Principal,
    registration: Registration,
    sources: dict[str, str],
    digests: dict[str, str],
) -> None:
    """Record new sources; the worker copies them while the current files stay served."""
    try:
        registration.replace_files(deps.now(), sorted(sources), by=caller.id)
    except IllegalTransition as refused:
        raise Conflict(str(refused)) from None
    secrets = unseal(deps, registration)
    # Files that failed before are retried with the new ones: keep their sources too.
    secrets["model_files"] = {**secrets.get("model_files", {}), **sources}
    for target in sources:
        (secrets.get("inherited") or {}).pop(target, None)  # a clone's file replaced by its owner
    seal(deps, registration, secrets)
    expected = registration.document.setdefault("expected_sha256", {})
    for target, url in sources.items():
        registration.document["model_files"][target] = redact_url(url)
        expected.pop(target, None)
    expected.update(digests)


def delete_model(deps: Dependencies, caller: Principal, name: str, version: str) -> None:
    """Remove the caller's model: a tombstone first (the model is gone for the API and a copy in
    flight stops), then its listing, file rows and blobs, then the record. If that stops half-way,
    a retried DELETE (or the sweep) finishes it."""
    validate_identifiers(name=name, version=version)
    with storage_failures():
        registration = deps.store.get(caller.id, name, version)
        if registration is None:
            raise NotVisible()
        try:
            registration = deletion.tombstone(deps, registration)
        except NotFound:
            raise NotVisible() from None
        except ConcurrentUpdate:
            raise Conflict("the model kept changing while it was being deleted; retry") from None
        deletion.finish_deletion(deps, registration)
    events.dispatch_soon(deps, caller.id)


# -- cloning ------------------------------------------------------------------------------------


def _merged_config(parent: Registration, clone: CloneRequest) -> dict[str, Any]:
    overrides = (
        clone.model_config_overrides.model_dump(mode="json", exclude_unset=True)
        if clone.model_config_overrides
        else {}
    )
    config = {**parent.document.get("model_config", {}), **overrides}
    if "private" not in overrides:
        config["private"] = True  # a new model is private until its owner says otherwise
    return config  # the parent's registry password is not in its document: never inherited


def _pins(deps: Dependencies, parent: Registration, inherited: list[str]) -> dict[str, dict[str, Any]]:
    """The exact blob of each inherited file, as it is now, and its digest if that blob is the one
    the parent hashed: the clone copies that blob or nothing, and inherits the digest."""
    pins: dict[str, dict[str, Any]] = {}
    with storage_failures():
        rows = {p.target: p for p in deps.store.files(parent)}
        for target in inherited:
            row = rows.get(target)
            path = parent.blob_path(target, row.served_generation) if row is not None and row.served else ""
            info = deps.files.stat(path) if path else None
            if row is None or info is None:
                raise Conflict(f"the parent's file {safe_key(target)!r} is not available yet; retry later")
            sha256 = row.served_sha256 if info.etag == row.blob_etag else ""
            pins[target] = {"path": path, "etag": info.etag, "size": info.size, "sha256": sha256}
    return pins


def clone_model(deps: Dependencies, caller: Principal, name: str, version: str, body: Any) -> Registration:
    """A new model of the caller's, copied server-side from the registry's own copy of a parent."""
    validate_identifiers(name=name, version=version)
    clone = parse_with(CloneRequest, body, request_context(name, version, caller, deps.settings))
    try:
        parent = find_visible(deps, caller, name, clone.parent_version, clone.parent_owner)
    except (NotVisible, InvalidRequest):
        raise NotVisible() from None
    if not parent.finished_once:
        raise NotVisible()
    ignored = set(clone.ignore_files or ())
    unknown = sorted(ignored - set(parent.file_names))
    if unknown:
        shown = ", ".join(safe_key(u) for u in unknown[:5])
        raise InvalidRequest([FieldError("ignore_files", f"not files of the parent: {shown}")])
    given = clone.model_dump(mode="json", by_alias=True).get("model_files") or {}
    added = sources_of(clone.model_files or {})
    inherited = [f for f in parent.file_names if f not in ignored and f not in added]
    context = request_context(name, version, caller, deps.settings, frozenset(inherited))
    too_long = inherited_name_problems(inherited, context)
    if too_long:
        raise InvalidRequest(too_long)
    merged_body: dict[str, Any] = {
        "model_config": _merged_config(parent, clone),
        "model_files": given,
        "model_metainfo": {
            **parent.metainfo,
            **(clone.model_metainfo.changes() if clone.model_metainfo else {}),
        },
    }
    if clone.private_packages:
        merged_body["private_packages"] = clone.private_packages
    request = parse_registration(merged_body, context)
    registration, _ = new_registration(request, name=name, version=version, caller=caller, deps=deps)
    registration.parent = {"name": parent.name, "version": parent.version, "owner": parent.owner}
    registration.file_names = sorted({*inherited, *added})
    registration.document = public_document(request)
    registration.document["model_files"] = {
        f: (parent.document["model_files"].get(f, "") if f in inherited else redact_url(added[f]))
        for f in registration.file_names
    }
    replay_key = digest_input({"clone": True, **clone.model_dump(mode="json", by_alias=True)})
    secrets = Secrets.of(request, replay_key)
    secrets = Secrets(
        secrets.model_files,
        secrets.private_packages,
        secrets.docker_passwords,
        replay_key,
        inherited=_pins(deps, parent, inherited),
        parent_registration_id=parent.registration_id,
    )
    registration.body_digest = deps.sealer.digest(replay_key)
    seal(deps, registration, secrets.as_dict())
    registration.record(
        EventType.CLONED, registration.created_at, {"by": caller.id, "parent": registration.parent}
    )
    return record_new(deps, registration, replay_key)
