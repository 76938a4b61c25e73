"""RegistrationStore on Azure Table Storage (the layout: adapters/table_codec.py).

Every write of a record and of its listing rows is one entity group transaction: a language index
row never disagrees with its record, and a publish never leaves half a model listed.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from azure.core import MatchConditions
from azure.data.tables import TableClient, TableServiceClient, UpdateMode

from registry.adapters import table_codec as codec
from registry.adapters.errors import ignore_exists, storage_errors
from registry.domain.errors import AlreadyExists, ConcurrentUpdate, NotFound
from registry.domain.events import Event
from registry.domain.listing import ModelFilter, ModelSummary
from registry.domain.model import FileProgress, Manifest, ModelKey, Registration
from registry.domain.vocabulary import State

_BATCH = 100  # entity group transactions take at most 100 operations


@dataclass(frozen=True)
class TableNames:
    registrations: str
    files: str
    catalog: str
    changes: str
    manifests: str


_IF_MATCH = MatchConditions.IfNotModified
Operation = tuple[Any, ...]


class TableRegistrationStore:
    def __init__(self, tables: TableNames, service: TableServiceClient) -> None:
        self._registrations = service.get_table_client(tables.registrations)
        self._files = service.get_table_client(tables.files)
        self._catalog = service.get_table_client(tables.catalog)
        self._changes = service.get_table_client(tables.changes)
        self._manifests = service.get_table_client(tables.manifests)

    def ensure_tables(self) -> None:
        for table in (self._registrations, self._files, self._catalog, self._changes, self._manifests):
            with storage_errors():
                ignore_exists(table.create_table)

    # -- records (and the owner's language index rows, written with them) --

    def get(self, owner: str, name: str, version: str) -> Registration | None:
        try:
            with storage_errors():
                entity = self._registrations.get_entity(owner, f"{name}!{version}")
        except NotFound:
            return None
        return _loaded(entity)

    def insert(self, registration: Registration) -> Registration:
        entity = _checked(registration)
        rows = codec.index_rows(entity["PartitionKey"], entity["RowKey"], registration)
        # A new record's events are new rows: "create" (an upsert costs Azurite twice as much).
        together = [*(("upsert", row) for row in rows.values()), *_outbox(registration, "create")]
        with storage_errors():
            if together:
                etag = self._registrations.submit_transaction([("create", entity), *together])[0]["etag"]
            else:
                etag = self._registrations.create_entity(entity)["etag"]
        return _stored(registration, etag, entity)

    def replace(self, registration: Registration) -> Registration:
        entity = _checked(registration)
        update = (
            "update",
            entity,
            {"mode": UpdateMode.REPLACE, "etag": registration.etag, "match_condition": _IF_MATCH},
        )
        # The listing's index rows change with the record when its listing columns do, and what
        # happened to it is recorded with it (the outbox): all in one transaction.
        together = (
            [] if codec.stored_index(entity) == _memo(registration) else self._reindex(entity, registration)
        )
        together += _outbox(registration)
        with storage_errors(missing_is_conflict=True):
            if together:
                etag = self._registrations.submit_transaction([update, *together])[0]["etag"]
            else:
                etag = self._registrations.update_entity(
                    entity, mode=UpdateMode.REPLACE, etag=registration.etag, match_condition=_IF_MATCH
                )["etag"]
        return _stored(registration, etag, entity)

    def _reindex(self, entity: dict[str, Any], registration: Registration) -> list[Operation]:
        rows = codec.index_rows(entity["PartitionKey"], entity["RowKey"], registration)
        _, old_languages = _memo(registration)
        stale = {codec.language_prefix(x) + entity["RowKey"] for x in old_languages} - set(rows)
        pk = entity["PartitionKey"]
        deletes = [("delete", {"PartitionKey": pk, "RowKey": key}) for key in sorted(stale)]
        return [*(("upsert", row) for row in rows.values()), *deletes]

    def delete(self, registration: Registration, *, unrecord: Sequence[Event] = ()) -> None:
        partition, row = codec.record_key(registration)
        _, languages = _memo(registration)
        operations: list[Operation] = [
            (
                "delete",
                {"PartitionKey": partition, "RowKey": row},
                {"etag": registration.etag, "match_condition": _IF_MATCH},
            ),
            *(
                ("delete", {"PartitionKey": partition, "RowKey": codec.language_prefix(x) + row})
                for x in languages
            ),
            *(("delete", {"PartitionKey": partition, "RowKey": codec.event_row_key(e)}) for e in unrecord),
        ]
        with storage_errors(missing_is_conflict=True):
            self._registrations.submit_transaction(operations)

    # -- the outbox: events recorded with their changes, until the dispatcher delivered them --

    def pending_events(self, owner: str) -> list[Event]:
        low, high = codec.OUTBOX_RANGE
        with storage_errors():
            entities = self._registrations.query_entities(
                "PartitionKey eq @owner and RowKey ge @low and RowKey lt @high",
                parameters={"owner": owner, "low": low, "high": high},
            )
            return [codec.event(e) for e in entities]

    def delivered(self, owner: str, event: Event) -> None:
        with storage_errors():
            self._registrations.delete_entity(owner, codec.event_row_key(event))

    def owners_with_pending_events(self) -> Iterator[str]:
        low, high = codec.OUTBOX_RANGE
        seen: set[str] = set()
        with storage_errors():
            for entity in self._registrations.query_entities(
                "RowKey ge @low and RowKey lt @high",
                parameters={"low": low, "high": high},
                select=["PartitionKey"],
            ):
                if entity["PartitionKey"] not in seen:
                    seen.add(entity["PartitionKey"])
                    yield entity["PartitionKey"]

    def in_state(self, state: State, quiet_since: datetime | None = None) -> Iterator[Registration]:
        query = "state eq @state and RowKey lt @mark"
        parameters: dict[str, Any] = {"state": state.value, "mark": codec.INDEX_MARK}
        if quiet_since is not None:
            query += " and last_progress_at lt @before"
            parameters["before"] = quiet_since
        with storage_errors():
            for entity in self._registrations.query_entities(query, parameters=parameters):
                yield _loaded(entity)

    def everything(self) -> Iterator[Registration]:
        with storage_errors():
            for entity in self._registrations.query_entities(
                "RowKey lt @mark", parameters={"mark": codec.INDEX_MARK}
            ):
                yield _loaded(entity)

    def count_in_progress(self, owner: str, at_most: int) -> int:
        count = 0
        with storage_errors():
            for _ in self._registrations.query_entities(
                "PartitionKey eq @owner and RowKey lt @mark and state eq @state",
                parameters={"owner": owner, "mark": codec.INDEX_MARK, "state": State.IN_PROGRESS.value},
                select=["RowKey"],
                results_per_page=at_most,
            ):
                count += 1
                if count >= at_most:
                    break
        return count

    # -- file rows --

    def files(self, registration: Registration) -> list[FileProgress]:
        with storage_errors():
            entities = list(
                self._files.query_entities(
                    "PartitionKey eq @pk", parameters={"pk": codec.files_partition(registration)}
                )
            )
        return sorted((codec.file_progress(e) for e in entities), key=lambda f: f.index)

    def insert_files(self, registration: Registration, files: list[FileProgress]) -> None:
        partition = codec.files_partition(registration)
        for batch in _batches([("create", codec.file_entity(partition, f)) for f in files]):
            with storage_errors():
                self._files.submit_transaction(batch)

    def replace_file(self, registration: Registration, progress: FileProgress) -> FileProgress:
        with storage_errors(missing_is_conflict=True):
            metadata = self._files.update_entity(
                codec.file_entity(codec.files_partition(registration), progress),
                mode=UpdateMode.REPLACE,
                etag=progress.etag,
                match_condition=_IF_MATCH,
            )
        progress.etag = metadata["etag"]
        return progress

    def forget_files(self, registration: Registration) -> None:
        self._delete_partition(self._files, codec.files_partition(registration))

    def _delete_partition(self, table: TableClient, partition: str) -> None:
        with storage_errors():
            rows = list(
                table.query_entities("PartitionKey eq @pk", parameters={"pk": partition}, select=["RowKey"])
            )
        for batch in _batches([("delete", {"PartitionKey": partition, "RowKey": e["RowKey"]}) for e in rows]):
            with storage_errors():
                table.submit_transaction(batch)

    # -- the public catalog and listing --

    def publish(self, registration: Registration) -> None:
        """List it as the record says: the catalog row and its language rows in one transaction,
        conditioned on the row read first, so concurrent publishes never mix their rows."""
        key = codec.catalog_key(registration)
        row = {"PartitionKey": codec.PUBLIC, "RowKey": key, **codec.listing_columns(registration)}
        row["indexed_languages"] = "|".join(registration.languages)
        rows = codec.index_rows(codec.PUBLIC, key, registration)
        for _ in range(5):
            current = self._catalog_row(key)
            if current is None:
                write: Operation = ("create", row)
                old: list[str] = []
            else:
                write = (
                    "update",
                    row,
                    {
                        "mode": UpdateMode.REPLACE,
                        "etag": current.metadata["etag"],
                        "match_condition": _IF_MATCH,
                    },
                )
                old = codec.stored_index(current)[1]
            stale = {codec.language_prefix(x) + key for x in old} - set(rows)
            operations = [
                write,
                *(("upsert", r) for r in rows.values()),
                *(("delete", {"PartitionKey": codec.PUBLIC, "RowKey": k}) for k in sorted(stale)),
            ]
            try:
                with storage_errors(missing_is_conflict=True):
                    self._catalog.submit_transaction(operations)
                return
            except (ConcurrentUpdate, AlreadyExists):
                continue
        raise ConcurrentUpdate()

    def unpublish(self, registration: Registration) -> None:
        key = codec.catalog_key(registration)
        for _ in range(5):
            current = self._catalog_row(key)
            if current is None:
                return
            operations: list[Operation] = [
                (
                    "delete",
                    {"PartitionKey": codec.PUBLIC, "RowKey": key},
                    {"etag": current.metadata["etag"], "match_condition": _IF_MATCH},
                ),
                *(
                    ("delete", {"PartitionKey": codec.PUBLIC, "RowKey": codec.language_prefix(x) + key})
                    for x in codec.stored_index(current)[1]
                ),
            ]
            try:
                with storage_errors(missing_is_conflict=True):
                    self._catalog.submit_transaction(operations)
                return
            except ConcurrentUpdate:
                continue
        raise ConcurrentUpdate()

    def _catalog_row(self, key: str) -> Any:
        try:
            with storage_errors():
                return self._catalog.get_entity(codec.PUBLIC, key, select=["RowKey", "indexed_languages"])
        except NotFound:
            return None

    def own_models(
        self, owner: str, after: str, filters: ModelFilter, *, page_size: int = 200
    ) -> Iterator[ModelSummary]:
        clauses, parameters = codec.filter_clauses(filters)
        low, high = codec.key_range(filters, after)
        clauses = ["PartitionKey eq @owner", "RowKey gt @low", "RowKey lt @high", "state ne @gone", *clauses]
        parameters |= {"owner": owner, "low": low, "high": high, "gone": State.DELETING.value}
        yield from self._summaries(self._registrations, clauses, parameters, page_size)

    def public_models(
        self, after: str, filters: ModelFilter, exclude_owner: str, *, page_size: int = 200
    ) -> Iterator[ModelSummary]:
        clauses, parameters = codec.filter_clauses(filters)
        low, high = codec.key_range(filters, after)
        clauses = [
            "PartitionKey eq @public",
            "RowKey gt @low",
            "RowKey lt @high",
            "owner ne @caller",
            *clauses,
        ]
        parameters |= {"public": codec.PUBLIC, "low": low, "high": high, "caller": exclude_owner}
        if filters.owner is not None:
            clauses.append("owner eq @owner")
            parameters["owner"] = filters.owner
        yield from self._summaries(self._catalog, clauses, parameters, page_size)

    def _summaries(
        self, table: TableClient, clauses: list[str], parameters: dict[str, Any], page_size: int
    ) -> Iterator[ModelSummary]:
        with storage_errors():
            entities = table.query_entities(
                " and ".join(clauses),
                parameters=parameters,
                select=codec.SUMMARY_COLUMNS,
                results_per_page=min(max(page_size, 1), 1000),
            )
            for entity in entities:
                yield codec.summary(entity)

    # -- the history --

    def record_history(self, events: Sequence[Event]) -> None:
        by_partition: dict[str, list[Operation]] = {}
        for event in events:
            entity = codec.history_entity(event)
            by_partition.setdefault(entity["PartitionKey"], []).append(("upsert", entity))
        with storage_errors():
            for operations in by_partition.values():
                for start in range(0, len(operations), _BATCH):
                    self._changes.submit_transaction(operations[start : start + _BATCH])

    def history(self, key: ModelKey, limit: int, after: tuple[datetime, str] | None = None) -> list[Event]:
        query = "PartitionKey eq @pk"
        parameters: dict[str, Any] = {"pk": codec.history_partition(key.owner, key.name, key.version)}
        if after is not None:
            query += " and RowKey gt @after"
            parameters["after"] = codec.history_row_key(*after)
        with storage_errors():
            entities = self._changes.query_entities(
                query, parameters=parameters, results_per_page=min(max(limit, 1), 1000)
            )
            return [codec.event(e) for e in itertools.islice(entities, limit)]

    # -- manifests --

    def add_manifest(self, registration: Registration, manifest: Manifest) -> None:
        entity = codec.manifest_entity(registration, manifest)
        codec.check_fits(entity, f"revision {manifest.revision} of the manifest of {registration.name}")
        with storage_errors():
            self._manifests.create_entity(entity)

    def manifests(self, registration: Registration) -> list[Manifest]:
        partition = codec.manifests_partition(registration)
        with storage_errors():
            entities = list(
                self._manifests.query_entities("PartitionKey eq @pk", parameters={"pk": partition})
            )
        return sorted((codec.manifest(e) for e in entities), key=lambda m: m.revision, reverse=True)

    def forget_manifests(self, registration: Registration) -> None:
        self._delete_partition(self._manifests, codec.manifests_partition(registration))


def _outbox(registration: Registration, write: str = "upsert") -> list[Operation]:
    return [(write, codec.event_entity(registration.owner, event)) for event in registration.events]


def _checked(registration: Registration) -> dict[str, Any]:
    entity = codec.registration_entity(registration)
    codec.check_fits(entity, f"the registration of {registration.name} {registration.version}")
    return entity


def _memo(registration: Registration) -> tuple[str, list[str]]:
    memo = registration.storage_memo
    return memo if isinstance(memo, tuple) else ("", [])


def _stored(registration: Registration, etag: str, entity: dict[str, Any]) -> Registration:
    registration.etag = etag
    registration.events = []  # written with it
    registration.storage_memo = codec.stored_index(entity)
    return registration


def _loaded(entity: Any) -> Registration:
    registration = codec.registration(entity)
    registration.storage_memo = codec.stored_index(entity)
    return registration


def _batches(operations: list[Any]) -> Iterator[list[Any]]:
    for start in range(0, len(operations), _BATCH):
        yield operations[start : start + _BATCH]
