"""The catalog's one door into the registry's core.

Every read and every change the catalog makes goes through the same service functions as the
JSON API (`registry.services`), with the caller the API's identity code finds, so the same
visibility rules hold. Every import of the core by the catalog is in this module: when the core
changes, this is the file to adapt. What leaves it is plain data of the catalog's own (`Row`,
`ModelPage`, dicts shaped like the API's JSON bodies).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

import azure.functions as func

from registry.blueprints.responses import caller as api_caller
from registry.bootstrap import Dependencies, dependencies
from registry.identity import Principal
from registry.ports import RegistrationStore
from registry.records import DATA_TYPES, ModelFilter, ModelSummary
from registry.services import models as service
from registry.services.registration import Conflict, Unavailable
from registry.services.registration import register as register_model
from registry.settings import Settings
from registry.validation import InvalidRequest, is_identifier
from registry.web.cache import PublicListingCache

__all__ = [
    "DATA_TYPES",
    "MODEL_TYPES",
    "Conflict",
    "Core",
    "InvalidRequest",
    "ModelFilter",
    "ModelPage",
    "NotVisible",
    "Principal",
    "Row",
    "Settings",
    "Unavailable",
    "core",
    "is_identifier",
]

MODEL_TYPES = ("ENCODER", "DECODER", "SEQ2SEQ")
DOWNLOAD_TTL = timedelta(minutes=10)
NotVisible = service.NotVisible
# Dev mode only: the principal the "act as" picker chose (see Core.caller).
DEV_PRINCIPAL_COOKIE = "catalog_dev_principal"


@dataclass(frozen=True)
class Row:
    """One model in a list."""

    name: str
    version: str
    owner: str
    owner_name: str
    type: str
    description: str
    private: bool
    state: str
    trainable: bool
    languages: tuple[str, ...]
    parent: dict[str, str] | None
    updated_at: datetime

    @property
    def key(self) -> str:
        """Orders rows as the service's pages do: by (name, version, owner)."""
        return f"{self.name}!{self.version}!{self.owner}"


@dataclass(frozen=True)
class ModelPage:
    rows: list[Row]
    continuation: str | None


def _row(summary: ModelSummary) -> Row:
    return Row(
        name=summary.name,
        version=summary.version,
        owner=summary.owner,
        owner_name=summary.owner_name,
        type=summary.type,
        description=summary.description,
        private=summary.private,
        state=str(summary.state),
        trainable=summary.trainable,
        languages=tuple(summary.languages),
        parent=summary.parent_model,
        updated_at=summary.updated_at,
    )


def _plain(view: Any) -> dict[str, Any]:
    """An API body as a dict, whether the service returns a dict or a pydantic model."""
    dump = getattr(view, "model_dump", None)
    return cast(dict[str, Any], dump(mode="json") if dump else view)


class _CachedListingStore:
    """The store, with the public catalog's rows served from the per-instance cache.

    Only `public_models` is cached: the public catalog is one table partition that every
    listing reads, and its rows are the same for every caller. The caller's own models (their
    own partition) and every point read go to the store as they are.
    """

    def __init__(self, store: RegistrationStore, cache: PublicListingCache[ModelSummary]) -> None:
        self._store = store
        self._cache = cache

    def public_models(self, after: str, filters: ModelFilter, exclude_owner: str) -> Iterator[ModelSummary]:
        def fetch(start: str) -> Iterator[ModelSummary]:
            return self._store.public_models(start, filters, exclude_owner="")

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
        self._listing_store = cast(RegistrationStore, _CachedListingStore(deps.store, cache))

    @property
    def settings(self) -> Settings:
        return self._deps.settings

    # -- who is asking --

    def caller(self, req: func.HttpRequest, cookies: Mapping[str, str]) -> Principal | None:
        """The API's caller (Easy Auth's principal headers, trusted only where Easy Auth put them).

        In dev mode only (which the settings refuse in Azure), the "act as" cookie names the
        principal when no principal header does: a browser cannot send those headers itself.
        """
        principal = api_caller(req, self.settings)
        if principal is None and self.settings.dev_mode:
            chosen = cookies.get(DEV_PRINCIPAL_COOKIE, "")
            if is_identifier(chosen):
                principal = Principal(chosen, chosen)
        return principal

    # -- reading --

    def list_page(
        self, caller: Principal, filters: ModelFilter, limit: int, continuation: str | None
    ) -> ModelPage:
        page = service.list_models(self._listing_store, caller, filters, limit, continuation)
        return ModelPage([_row(s) for s in page.models], page.continuation)

    def model(self, caller: Principal, name: str, version: str, owner: str) -> dict[str, Any]:
        """The API's GET body of a model the caller may see; NotVisible otherwise."""
        registration = service.find_visible(self._deps.store, caller, name, version, owner)
        return _plain(service.model_view(registration, service.files_of(self._deps.store, registration)))

    def status(self, caller: Principal, name: str, version: str) -> dict[str, Any]:
        """The caller's own registration: state, message and per-file progress."""
        registration = service.find_own(self._deps.store, caller, name, version)
        return {
            "name": registration.name,
            "version": registration.version,
            "owner": registration.owner,
            "state": registration.state.value,
            "message": registration.message,
            "updated_at": registration.updated_at.isoformat(),
            "files": [
                {"name": f.target, "state": f.state.value, "bytes_copied": f.bytes_copied, "size": f.size}
                for f in service.files_of(self._deps.store, registration)
            ],
        }

    def index_page(self, caller: Principal, name: str, version: str, owner: str) -> bytes | None:
        registration = service.find_visible(self._deps.store, caller, name, version, owner)
        return service.index_page(self._deps.copier, registration)

    def file_url(self, caller: Principal, name: str, version: str, owner: str, path: str) -> str:
        registration = service.find_visible(self._deps.store, caller, name, version, owner)
        return service.file_url(self._deps.copier, registration, path, DOWNLOAD_TTL)

    # -- changing (each clears this instance's listing cache: its own changes show at once) --

    def update(self, caller: Principal, name: str, version: str, body: dict[str, Any]) -> None:
        d = self._deps
        service.update_model(
            body=body,
            name=name,
            version=version,
            caller=caller,
            store=d.store,
            queue=d.queue,
            sealer=d.sealer,
            settings=d.settings,
        )
        self.cache.clear()

    def delete(self, caller: Principal, name: str, version: str) -> None:
        service.delete_model(
            name=name, version=version, caller=caller, store=self._deps.store, files=self._deps.copier
        )
        self.cache.clear()

    def register(self, caller: Principal, name: str, version: str, body: Any) -> None:
        d = self._deps
        register_model(
            body=body,
            name=name,
            version=version,
            caller=caller,
            store=d.store,
            queue=d.queue,
            sealer=d.sealer,
            settings=d.settings,
        )
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
