"""RegistrationStore in memory, with Table Storage's semantics where the services depend on them.

It keeps rows as the Table adapter writes them: the same keys, the same listing columns and
language index rows, the same size limits (all from registry/adapters/table_codec.py). Only the
storage is different: dictionaries, and ETags from a counter. tests/contract holds the two stores
to one suite.
"""

from __future__ import annotations

import copy
import itertools
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

from registry.adapters import table_codec as codec
from registry.domain.errors import AlreadyExists, ConcurrentUpdate, StorageUnavailable
from registry.domain.events import Event
from registry.domain.listing import ModelFilter, ModelSummary
from registry.domain.model import FileProgress, Manifest, ModelKey, Registration
from registry.domain.vocabulary import State

Row = dict[str, Any]


class FakeRegistrationStore:
    """Registrations, file rows, listing rows, the outbox and the history in memory."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._etags = itertools.count(1)
        self._records: dict[tuple[str, str, str], Registration] = {}
        self._own_rows: dict[tuple[str, str], Row] = {}  # (owner, RowKey) -> listing row
        self._catalog: dict[str, Row] = {}  # RowKey -> listing row, in the "public" partition
        self._files: dict[str, dict[int, FileProgress]] = {}
        self._outbox: dict[str, dict[str, Event]] = {}  # owner -> RowKey -> pending event
        self._history: dict[str, dict[str, Event]] = {}  # model key -> RowKey -> event
        self._manifests: dict[str, dict[int, Manifest]] = {}
        # Method names whose next calls raise StorageUnavailable (a test sets these).
        self.unavailable: set[str] = set()
        self.calls: list[str] = []
        # Run before a method's body (a test interleaves another actor here), then forgotten.
        self.before: dict[str, Callable[[], object]] = {}

    def _new_etag(self) -> str:
        return f"W/\"datetime'{next(self._etags)}'\""

    def _enter(self, method: str) -> None:
        self.calls.append(method)
        hook = self.before.pop(method, None)
        if hook is not None:
            hook()
        if method in self.unavailable:
            raise StorageUnavailable(f"fake storage: {method} is unavailable")

    @staticmethod
    def _key(registration: Registration) -> tuple[str, str, str]:
        return (registration.owner, registration.name, registration.version)

    # -- records (with the owner's listing rows, written with them as the adapter does) --

    def _write(self, registration: Registration) -> Registration:
        entity = codec.registration_entity(registration)
        codec.check_fits(entity, f"the registration of {registration.name} {registration.version}")
        partition, row_key = entity["PartitionKey"], entity["RowKey"]
        self._drop_own_rows(registration)
        self._own_rows[(partition, row_key)] = codec.listing_columns(registration)
        for key, row in codec.index_rows(partition, row_key, registration).items():
            self._own_rows[(partition, key)] = row
        for event in registration.events:  # written with the record, as in one transaction
            self._outbox.setdefault(registration.owner, {})[codec.event_row_key(event)] = event
        registration.events = []
        registration.etag = self._new_etag()
        self._records[self._key(registration)] = copy.deepcopy(registration)
        return registration

    def _drop_own_rows(self, registration: Registration) -> None:
        partition, row_key = codec.record_key(registration)
        for key in [
            k for k in self._own_rows if k[0] == partition and row_key in (k[1], codec.indexed_key(k[1]))
        ]:
            del self._own_rows[key]

    def _current(self, registration: Registration) -> Registration:
        stored = self._records.get(self._key(registration))
        if stored is None or registration.etag is None or stored.etag != registration.etag:
            raise ConcurrentUpdate()
        return stored

    def get(self, owner: str, name: str, version: str) -> Registration | None:
        with self._lock:
            self._enter("get")
            return copy.deepcopy(self._records.get((owner, name, version)))

    def insert(self, registration: Registration) -> Registration:
        with self._lock:
            self._enter("insert")
            if self._key(registration) in self._records:
                raise AlreadyExists()
            return self._write(registration)

    def replace(self, registration: Registration) -> Registration:
        with self._lock:
            self._enter("replace")
            self._current(registration)
            return self._write(registration)

    def delete(self, registration: Registration, *, unrecord: Sequence[Event] = ()) -> None:
        with self._lock:
            self._enter("delete")
            self._current(registration)
            pending = self._outbox.get(registration.owner, {})
            keys = [codec.event_row_key(e) for e in unrecord]
            if any(key not in pending for key in keys):
                raise ConcurrentUpdate()  # delivered already: the transaction fails
            for key in keys:
                del pending[key]
            self._drop_own_rows(registration)
            del self._records[self._key(registration)]

    def in_state(self, state: State, quiet_since: datetime | None = None) -> Iterable[Registration]:
        with self._lock:
            self._enter("in_state")
            return [
                copy.deepcopy(r)
                for r in self._records.values()
                if r.state is state and (quiet_since is None or r.last_progress_at < quiet_since)
            ]

    def everything(self) -> Iterator[Registration]:
        with self._lock:
            self._enter("everything")
            records = [copy.deepcopy(r) for r in self._records.values()]
        yield from records

    def count_in_progress(self, owner: str, at_most: int) -> int:
        with self._lock:
            self._enter("count_in_progress")
            found = sum(
                1 for r in self._records.values() if r.owner == owner and r.state is State.IN_PROGRESS
            )
            return min(found, at_most)

    # -- file rows --

    def files(self, registration: Registration) -> list[FileProgress]:
        with self._lock:
            self._enter("files")
            rows = self._files.get(codec.files_partition(registration), {})
            return [copy.deepcopy(rows[i]) for i in sorted(rows)]

    def insert_files(self, registration: Registration, files: list[FileProgress]) -> None:
        with self._lock:
            self._enter("insert_files")
            rows = self._files.setdefault(codec.files_partition(registration), {})
            if any(f.index in rows for f in files):
                raise AlreadyExists()  # the batch is a transaction: all or nothing
            for f in files:
                stored = copy.deepcopy(f)
                stored.etag = self._new_etag()
                rows[f.index] = stored

    def replace_file(self, registration: Registration, progress: FileProgress) -> FileProgress:
        with self._lock:
            self._enter("replace_file")
            rows = self._files.get(codec.files_partition(registration), {})
            stored = rows.get(progress.index)
            if stored is None or progress.etag is None or stored.etag != progress.etag:
                raise ConcurrentUpdate()
            progress.etag = self._new_etag()
            rows[progress.index] = copy.deepcopy(progress)
            return progress

    def forget_files(self, registration: Registration) -> None:
        with self._lock:
            self._enter("forget_files")
            self._files.pop(codec.files_partition(registration), None)

    # -- the public catalog and listing --

    def publish(self, registration: Registration) -> None:
        with self._lock:
            self._enter("publish")
            self._unlist(registration)
            key = codec.catalog_key(registration)
            self._catalog[key] = codec.listing_columns(registration)
            for row_key, row in codec.index_rows(codec.PUBLIC, key, registration).items():
                self._catalog[row_key] = row

    def unpublish(self, registration: Registration) -> None:
        with self._lock:
            self._enter("unpublish")
            self._unlist(registration)

    def _unlist(self, registration: Registration) -> None:
        key = codec.catalog_key(registration)
        for row_key in [k for k in self._catalog if key in (k, codec.indexed_key(k))]:
            del self._catalog[row_key]

    def own_models(
        self, owner: str, after: str, filters: ModelFilter, *, page_size: int = 200
    ) -> Iterator[ModelSummary]:
        with self._lock:
            self._enter("own_models")
            rows = sorted((k, r) for (p, k), r in self._own_rows.items() if p == owner)
        yield from _query(rows, after, filters, lambda row: row["state"] != State.DELETING.value)

    def public_models(
        self, after: str, filters: ModelFilter, exclude_owner: str, *, page_size: int = 200
    ) -> Iterator[ModelSummary]:
        with self._lock:
            self._enter("public_models")
            rows = sorted(self._catalog.items())
        yield from _query(
            rows,
            after,
            filters,
            lambda row: row["owner"] != exclude_owner and filters.owner in (None, row["owner"]),
        )

    # -- the outbox and the history --

    def pending_events(self, owner: str) -> list[Event]:
        with self._lock:
            self._enter("pending_events")
            pending = self._outbox.get(owner, {})
            return [pending[k] for k in sorted(pending)]

    def delivered(self, owner: str, event: Event) -> None:
        with self._lock:
            self._enter("delivered")
            self._outbox.get(owner, {}).pop(codec.event_row_key(event), None)

    def owners_with_pending_events(self) -> Iterator[str]:
        with self._lock:
            self._enter("owners_with_pending_events")
            owners = sorted(owner for owner, pending in self._outbox.items() if pending)
        yield from owners

    def record_history(self, events: Sequence[Event]) -> None:
        with self._lock:
            self._enter("record_history")
            for event in events:
                partition = codec.history_partition(event.owner, event.name, event.version)
                self._history.setdefault(partition, {})[codec.history_row_key(event.time, event.id)] = event

    def history(self, key: ModelKey, limit: int, after: tuple[datetime, str] | None = None) -> list[Event]:
        with self._lock:
            self._enter("history")
            rows = self._history.get(codec.history_partition(key.owner, key.name, key.version), {})
            low = codec.history_row_key(*after) if after is not None else ""
            return [rows[k] for k in sorted(rows) if k > low][:limit]

    # -- manifests --

    def add_manifest(self, registration: Registration, manifest: Manifest) -> None:
        with self._lock:
            self._enter("add_manifest")
            entity = codec.manifest_entity(registration, manifest)
            codec.check_fits(entity, "a manifest")
            revisions = self._manifests.setdefault(codec.manifests_partition(registration), {})
            if manifest.revision in revisions:
                raise AlreadyExists()
            revisions[manifest.revision] = copy.deepcopy(manifest)

    def manifests(self, registration: Registration) -> list[Manifest]:
        with self._lock:
            self._enter("manifests")
            revisions = self._manifests.get(codec.manifests_partition(registration), {})
            return [copy.deepcopy(revisions[r]) for r in sorted(revisions, reverse=True)]

    def forget_manifests(self, registration: Registration) -> None:
        with self._lock:
            self._enter("forget_manifests")
            self._manifests.pop(codec.manifests_partition(registration), None)

    # -- for tests: look and tamper without going through the port --

    def catalog(self) -> list[ModelSummary]:
        """The public catalog's models (not its index rows), in key order."""
        with self._lock:
            return [
                codec.summary(r)
                for k, r in sorted(self._catalog.items())
                if not k.startswith(codec.INDEX_MARK)
            ]

    def catalog_rows(self) -> int:
        with self._lock:
            return len(self._catalog)

    def peek(self, owner: str, name: str, version: str) -> Registration | None:
        with self._lock:
            return copy.deepcopy(self._records.get((owner, name, version)))

    def all(self) -> list[Registration]:
        with self._lock:
            return [copy.deepcopy(r) for r in self._records.values()]

    def peek_files(self, registration: Registration) -> list[FileProgress]:
        with self._lock:
            rows = self._files.get(codec.files_partition(registration), {})
            return [copy.deepcopy(rows[i]) for i in sorted(rows)]

    def file_partitions(self) -> list[str]:
        with self._lock:
            return sorted(p for p, rows in self._files.items() if rows)

    def peek_outbox(self) -> list[Event]:
        """Every pending event, of every owner."""
        with self._lock:
            return [e for pending in self._outbox.values() for _, e in sorted(pending.items())]

    def update(self, owner: str, name: str, version: str, **changes: Any) -> Registration:
        """Change a stored registration as another process would (its etag changes)."""
        with self._lock:
            stored = copy.deepcopy(self._records[(owner, name, version)])
            for attribute, value in changes.items():
                setattr(stored, attribute, value)
            return copy.deepcopy(self._write(stored))


def _query(
    rows: list[tuple[str, Row]], after: str, filters: ModelFilter, keep: Callable[[Row], bool]
) -> Iterator[ModelSummary]:
    """What a Table query with the adapter's key range and filter terms returns, in key order."""
    low, high = codec.key_range(filters, after)
    terms = codec.filter_terms(filters)
    for key, row in rows:
        if low < key < high and keep(row) and all(row.get(column) == value for column, value in terms):
            yield codec.summary(row)
