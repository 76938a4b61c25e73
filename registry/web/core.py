"""The catalog's one door into the registry's core.

Every read and every change the catalog makes goes through the same service functions as the
JSON API (`registry.services`), with the caller the API's identity code finds, so the same
visibility rules hold. Every import of the core by the catalog is in this module: when the core
changes, this is the file to adapt. What leaves it is plain data of the catalog's own (`Row`,
`ModelPage`, dicts shaped like the API's JSON bodies).
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, cast

import azure.functions as func

from registry.blueprints import views as api_views
from registry.blueprints.http import MAX_WAIT_SECONDS, caller_of, until_changed, wait_seconds
from registry.bootstrap import dependencies
from registry.domain.listing import ModelFilter, ModelSummary
from registry.domain.model import ModelKey
from registry.domain.vocabulary import DATA_TYPES, MODEL_TYPES, DataType, ModelType, State
from registry.identity import Principal
from registry.ports import RegistrationStore
from registry.services import history as history_service
from registry.services import manifests as manifest_service
from registry.services import models as service
from registry.services.dependencies import Dependencies
from registry.services.registration import Conflict, TooLarge, TooMany, Unavailable
from registry.services.registration import register as register_model
from registry.settings import Settings
from registry.validation import InvalidRequest, is_identifier
from registry.web.cache import PublicListingCache

__all__ = [
    "DATA_TYPES",
    "MAX_WAIT_SECONDS",
    "MODEL_TYPES",
    "Conflict",
    "Core",
    "History",
    "InvalidRequest",
    "ModelDetails",
    "ModelFilter",
    "ModelPage",
    "NotVisible",
    "Principal",
    "Row",
    "Settings",
    "TooLarge",
    "TooMany",
    "Unavailable",
    "core",
    "is_identifier",
    "model_filter",
    "wait_seconds",
]

DOWNLOAD_TTL = timedelta(minutes=10)
NotVisible = service.NotVisible
# Dev mode only: the principal the "act as" picker chose (see Core.caller).
DEV_PRINCIPAL_COOKIE = "catalog_dev_principal"


# One model in a list: the listing's own summary (ordered by its `sort_key`, as the pages are).
Row = ModelSummary


@dataclass(frozen=True)
class ModelPage:
    rows: list[Row]
    continuation: str | None


@dataclass(frozen=True)
class ModelDetails:
    """What a model's page shows, from one read of its record (each part the API's JSON body)."""

    view: dict[str, Any]  # GET /model/{name}/{version}/{owner}
    index: bytes | None  # its index.md, once copied
    # Every revision, newest first: GET .../manifest?revision=N, with `by` from GET .../manifests
    manifests: list[dict[str, Any]]
    status: dict[str, Any] | None  # GET .../status, for its owner while it copies


@dataclass(frozen=True)
class History:
    """One page of a model's history as the caller may see it (each entry the API's JSON)."""

    entries: list[dict[str, Any]]  # newest first
    continuation: str | None


def _plain(view: Any) -> dict[str, Any]:
    """An API response body as the API sends it (a dict, from its pydantic response model)."""
    dump = getattr(view, "model_dump", None)
    return cast(dict[str, Any], dump(mode="json", by_alias=True) if dump else view)


def model_filter(**given: Any) -> ModelFilter:
    """The service's list filters (ModelFilter's fields); the catalog has checked each type
    against MODEL_TYPES or DATA_TYPES."""
    values: dict[str, Any] = dict(given)
    for key, kind in (("type", ModelType), ("input_type", DataType), ("output_type", DataType)):
        if values.get(key):
            values[key] = kind(values[key])
    return ModelFilter(**values)


class _CachedListingStore:
    """The store, with the public catalog's rows served from the per-instance cache.

    Only `public_models` is cached: the public catalog is one table partition that every
    listing reads, and its rows are the same for every caller. The caller's own models (their
    own partition) and every point read go to the store as they are.
    """

    def __init__(self, store: RegistrationStore, cache: PublicListingCache[ModelSummary]) -> None:
        self._store = store
        self._cache = cache

    def public_models(
        self, after: str, filters: ModelFilter, exclude_owner: str, *, page_size: int = 200
    ) -> Iterator[ModelSummary]:
        # A cached chunk is read whole; without the cache, only what the page asks for.
        size = self._cache.chunk_size if self._cache.ttl > 0 else page_size

        def fetch(start: str) -> Iterator[ModelSummary]:
            return self._store.public_models(start, filters, exclude_owner="", page_size=size)

        for summary in self._cache.rows(repr(filters), after, fetch):
            if summary.owner != exclude_owner:
                yield summary

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


class Core:
    """The services the catalog uses, bound to the process's dependencies and listing cache."""

    def __init__(self, deps: Dependencies, cache: PublicListingCache[ModelSummary]) -> None:
        self._deps = deps
        self.cache = cache
        listing_store = cast(RegistrationStore, _CachedListingStore(deps.store, cache))
        self._listing_deps = dataclasses.replace(deps, store=listing_store)

    @property
    def settings(self) -> Settings:
        return self._deps.settings

    # -- who is asking --

    def caller(self, req: func.HttpRequest, cookies: Mapping[str, str]) -> Principal | None:
        """The API's caller (Easy Auth's principal headers, trusted only where Easy Auth put them).

        In dev mode only (which the settings refuse in Azure), the "act as" cookie names the
        principal when no principal header does: a browser cannot send those headers itself.
        """
        principal = caller_of(req, self._deps)
        if principal is None and self.settings.dev_mode:
            chosen = cookies.get(DEV_PRINCIPAL_COOKIE, "")
            if is_identifier(chosen):
                principal = Principal(chosen, chosen)
        return principal

    def retry_after(self, caller: Principal) -> int | None:
        """Seconds to wait if the caller is over the API's rate limit (the same admission)."""
        return self._deps.admission.retry_after(caller.id)

    # -- reading --

    def list_page(
        self, caller: Principal, filters: ModelFilter, limit: int, continuation: str | None
    ) -> ModelPage:
        page = service.list_models(self._listing_deps, caller, filters, limit, continuation)
        return ModelPage(list(page.models), page.continuation)

    def model(self, caller: Principal, name: str, version: str, owner: str) -> dict[str, Any]:
        """The API's GET body of a model the caller may see; NotVisible otherwise."""
        registration = service.find_visible(self._deps, caller, name, version, owner)
        return _plain(api_views.model(registration, service.files_of(self._deps, registration)))

    def details(self, caller: Principal, name: str, version: str, owner: str) -> ModelDetails:
        """A model the caller may see, with its index page and manifests; NotVisible otherwise."""
        registration = service.find_visible(self._deps, caller, name, version, owner)
        files = service.files_of(self._deps, registration)
        status = None
        if registration.owner == caller.id and registration.state is State.IN_PROGRESS:
            status = _plain(api_views.status(registration, files))
        found = manifest_service.revisions(self._deps, registration)
        listed = _plain(api_views.manifest_list(found))["manifests"]  # adds who made each change
        return ModelDetails(
            view=_plain(api_views.model(registration, files)),
            index=service.index_page(self._deps, registration),
            manifests=[_plain(api_views.manifest(m)) | entry for m, entry in zip(found, listed, strict=True)],
            status=status,
        )

    def exists(self, caller: Principal, name: str, version: str, owner: str) -> bool:
        """Whether the model is there for the caller to see."""
        try:
            service.find_visible(self._deps, caller, name, version, owner)
        except NotVisible:
            return False
        return True

    def manifest(
        self, caller: Principal, name: str, version: str, owner: str, revision: int | None
    ) -> dict[str, Any] | None:
        """GET .../manifest?revision=N of a model the caller may see (None: no such revision)."""
        registration = service.find_visible(self._deps, caller, name, version, owner)
        found = manifest_service.revision(self._deps, registration, revision)
        return _plain(api_views.manifest(found)) if found is not None else None

    def history(
        self, caller: Principal, key: tuple[str, str, str], limit: int, continuation: str | None
    ) -> History:
        """GET .../history, with its visibility: the owner reads all of it, also after deleting
        the model; others only while they may see the model, and only its public past.
        NotVisible when there is nothing the caller may read."""
        name, version, owner = key
        page = history_service.model_history(
            self._deps, caller, ModelKey(owner, name, version), limit, continuation
        )
        return History([_plain(api_views.history_entry(e)) for e in page.events], page.continuation)

    def status(self, caller: Principal, name: str, version: str) -> dict[str, Any]:
        """The caller's own registration: state, message and per-file progress."""
        registration = service.find_own(self._deps, caller, name, version)
        return _plain(api_views.status(registration, service.files_of(self._deps, registration)))

    def status_version(self, caller: Principal, keys: Sequence[tuple[str, str]]) -> str | None:
        """What changes whenever the status of any of the caller's registrations `keys` does: their
        records' ETags (every state change and every checkpoint of a copy writes the record), as
        the API's long-polled status watches it. None when none of them exists."""
        tags = []
        for name, version in keys:
            try:
                tags.append(service.find_own(self._deps, caller, name, version).etag or "")
            except NotVisible:
                tags.append("-")
        return "|".join(tags) if any(tag != "-" for tag in tags) else None

    async def until_changed(self, look: Callable[[], str | None], seconds: float) -> None:
        """Wait as the API's long polling does: looks at 0.5 s, then twice as long each time up to
        4 s, until `look` answers something else or `seconds` pass; no thread is held meanwhile."""
        await until_changed(look, min(seconds, MAX_WAIT_SECONDS))

    def file_url(self, caller: Principal, name: str, version: str, owner: str, path: str) -> tuple[str, str]:
        """A short-lived read-only URL of one file of the model, and the SHA-256 of its bytes."""
        registration = service.find_visible(self._deps, caller, name, version, owner)
        link = service.file_url(self._deps, registration, path, DOWNLOAD_TTL)
        return link.url, link.sha256

    # -- changing (each clears this instance's listing cache: its own changes show at once) --

    def update(self, caller: Principal, name: str, version: str, body: dict[str, Any]) -> None:
        service.update_model(self._deps, caller, name, version, body)
        self.cache.clear()

    def delete(self, caller: Principal, name: str, version: str) -> None:
        service.delete_model(self._deps, caller, name, version)
        self.cache.clear()

    def register(self, caller: Principal, name: str, version: str, body: Any) -> None:
        register_model(self._deps, caller, name, version, body)
        self.cache.clear()


LISTING_CACHE_SECONDS = 10.0
_lock = threading.Lock()
_core: Core | None = None


def core() -> Core:
    """The process's Core (built on first use, like the API's dependencies)."""
    global _core
    with _lock:
        if _core is None:
            _core = Core(dependencies(), PublicListingCache[ModelSummary](ttl_seconds=LISTING_CACHE_SECONDS))
        return _core
