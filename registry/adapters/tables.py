"""RegistrationStore on Azure Table Storage.

Registrations: PartitionKey = owner, RowKey = "name!version" (both limited to a safe alphabet).
File progress: PartitionKey = "owner:name:version", RowKey = the file's zero-padded index.
Catalog (public models that finished once): PartitionKey = "public", RowKey = "name!version!owner".
Changes (audit): PartitionKey = "owner:name:version", RowKey = an inverted timestamp (newest first).
'!' sorts below every character of a name, version or owner, so keys sort as the tuple does and
a list can page through both partitions in one order with "RowKey gt <last>".
"""

from __future__ import annotations

import contextlib
import json
import zlib
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from azure.core import MatchConditions
from azure.data.tables import TableClient, TableServiceClient, UpdateMode

from registry.adapters.errors import ignore_exists, storage_errors
from registry.records import (
    DATA_TYPES,
    EPOCH,
    FileProgress,
    FileState,
    ModelFilter,
    ModelSummary,
    NotFound,
    Registration,
    State,
    sort_key,
)

# A Table property holds at most 64 KiB; larger values are spread over numbered properties.
_CHUNK = 60_000
_BATCH = 100  # entity group transactions take at most 100 operations


def _put_chunks(entity: dict[str, Any], prefix: str, data: bytes) -> None:
    chunks = [data[i : i + _CHUNK] for i in range(0, len(data), _CHUNK)]
    entity[f"{prefix}_chunks"] = len(chunks)
    for i, chunk in enumerate(chunks):
        entity[f"{prefix}_{i}"] = chunk


def _get_chunks(entity: dict[str, Any], prefix: str) -> bytes:
    return b"".join(bytes(entity[f"{prefix}_{i}"]) for i in range(int(entity.get(f"{prefix}_chunks", 0))))


PUBLIC = "public"
# What a list reads of each model: enough to show and filter it, never the whole document.
_SUMMARY_COLUMNS = [
    "owner", "owner_name", "name", "version", "model_type", "description", "private", "state",
    "trainable", "languages", "parent", "created_at", "updated_at",
]  # fmt: skip


def _listing_columns(r: Registration) -> dict[str, Any]:
    """Filterable columns derived from the document (Table queries cannot look inside JSON)."""
    meta = r.document.get("model_metainfo", {})
    languages = {x.lower() for side in ("input", "output") for x in meta.get(f"{side}_languages") or ()}
    columns: dict[str, Any] = {
        "trainable": r.trainable,
        "languages": "|" + "|".join(sorted(languages)) + "|",
        "parent": json.dumps(r.parent) if r.parent else "",
    }
    for data_type in DATA_TYPES:
        columns[f"in_{data_type}"] = data_type in meta.get("input_types", ())
        columns[f"out_{data_type}"] = data_type in meta.get("output_types", ())
    return columns


def _summary(entity: Any) -> ModelSummary:
    return ModelSummary(
        name=entity["name"],
        version=entity["version"],
        owner=entity["owner"],
        owner_name=entity["owner_name"],
        type=entity["model_type"],
        description=entity["description"],
        private=bool(entity["private"]),
        state=entity["state"],
        trainable=bool(entity.get("trainable", False)),
        languages=tuple(x for x in entity.get("languages", "").split("|") if x),
        parent_model=json.loads(entity["parent"]) if entity.get("parent") else None,
        created_at=entity["created_at"],
        updated_at=entity["updated_at"],
    )


def _filter_query(filters: ModelFilter) -> tuple[list[str], dict[str, Any]]:
    clauses: list[str] = []
    parameters: dict[str, Any] = {}
    if filters.name is not None:
        # Every key of this name lies between "name!" and "name\"" ('"' follows '!').
        clauses += ["RowKey ge @name_low", "RowKey lt @name_high"]
        parameters |= {"name_low": f"{filters.name}!", "name_high": f'{filters.name}"'}
    for column, value in (
        ("version", filters.version),
        ("model_type", filters.type),
        ("trainable", filters.trainable),
        (f"in_{filters.input_type}", True if filters.input_type else None),
        (f"out_{filters.output_type}", True if filters.output_type else None),
    ):
        if value is not None:
            parameter = f"p{len(parameters)}"
            clauses.append(f"{column} eq @{parameter}")
            parameters[parameter] = value
    return clauses, parameters


def _registration_entity(r: Registration) -> dict[str, Any]:
    entity: dict[str, Any] = {
        "PartitionKey": r.owner,
        "RowKey": sort_key(r.name, r.version),
        "owner": r.owner,
        "owner_name": r.owner_name,
        "name": r.name,
        "version": r.version,
        "registration_id": r.registration_id,
        "state": r.state.value,
        "message": r.message,
        "private": r.private,
        "model_type": r.model_type,
        "description": r.description,
        "body_digest": r.body_digest,
        "file_names": json.dumps(r.file_names),
        "created_at": r.created_at,
        "updated_at": r.updated_at,
        "last_progress_at": r.last_progress_at,
        "picked_up": r.picked_up,
        "lease_id": r.lease_id,
        "lease_until": r.lease_until,
        "attempt": r.attempt,
        "takeovers": r.takeovers,
        "slices": r.slices,
        "refresh_files": json.dumps(r.refresh_files),
        "last_error": r.last_error,
        "finished_once": r.finished_once,
        "last_change": json.dumps(r.last_change) if r.last_change else "",
        **_listing_columns(r),
    }
    _put_chunks(entity, "document", zlib.compress(json.dumps(r.document).encode()))
    _put_chunks(entity, "sealed", r.sealed)
    if len(r.file_names) * 40 > _CHUNK:  # long lists of names go compressed, in chunks
        del entity["file_names"]
        _put_chunks(entity, "file_names_z", zlib.compress(json.dumps(r.file_names).encode()))
    return entity


def _registration(entity: Any) -> Registration:
    names = entity.get("file_names")
    file_names = (
        json.loads(names) if names else json.loads(zlib.decompress(_get_chunks(entity, "file_names_z")))
    )
    return Registration(
        owner=entity["owner"],
        name=entity["name"],
        version=entity["version"],
        owner_name=entity["owner_name"],
        registration_id=entity["registration_id"],
        state=State(entity["state"]),
        message=entity["message"],
        private=bool(entity["private"]),
        model_type=entity["model_type"],
        description=entity["description"],
        body_digest=entity["body_digest"],
        document=json.loads(zlib.decompress(_get_chunks(entity, "document"))),
        file_names=file_names,
        sealed=_get_chunks(entity, "sealed"),
        created_at=entity["created_at"],
        updated_at=entity["updated_at"],
        last_progress_at=entity["last_progress_at"],
        picked_up=bool(entity.get("picked_up", False)),
        lease_id=entity.get("lease_id", ""),
        lease_until=entity.get("lease_until") or EPOCH,
        attempt=int(entity.get("attempt", 1)),
        takeovers=int(entity.get("takeovers", 0)),
        slices=int(entity.get("slices", 0)),
        refresh_files=json.loads(entity.get("refresh_files") or "[]"),
        last_error=entity.get("last_error", ""),
        finished_once=bool(entity.get("finished_once", False)),
        parent=json.loads(entity["parent"]) if entity.get("parent") else None,
        last_change=json.loads(entity["last_change"]) if entity.get("last_change") else None,
        etag=entity.metadata["etag"],
    )


def _file_entity(partition: str, f: FileProgress) -> dict[str, Any]:
    return {
        "PartitionKey": partition,
        "RowKey": f"{f.index:04d}",
        "target": f.target,
        "state": f.state.value,
        "size": f.size if f.size is not None else -1,
        "bytes_copied": f.bytes_copied,
        "source_etag": f.source_etag,
        "block_size": f.block_size,
        "content_md5": f.content_md5,
        "error": f.error,
    }


def _file(entity: Any) -> FileProgress:
    size = int(entity["size"])
    return FileProgress(
        index=int(entity["RowKey"]),
        target=entity["target"],
        state=FileState(entity["state"]),
        size=size if size >= 0 else None,
        bytes_copied=int(entity["bytes_copied"]),
        source_etag=entity["source_etag"],
        block_size=int(entity["block_size"]),
        content_md5=entity["content_md5"],
        error=entity["error"],
        etag=entity.metadata["etag"],
    )


class TableRegistrationStore:
    def __init__(
        self, registrations: TableClient, files: TableClient, catalog: TableClient, changes: TableClient
    ) -> None:
        self._registrations = registrations
        self._files = files
        self._catalog = catalog
        self._changes = changes

    @classmethod
    def create(
        cls, service: TableServiceClient, registrations: str, files: str, catalog: str, changes: str
    ) -> TableRegistrationStore:
        return cls(*(service.get_table_client(name) for name in (registrations, files, catalog, changes)))

    def ensure_tables(self) -> None:
        for table in (self._registrations, self._files, self._catalog, self._changes):
            with storage_errors():
                ignore_exists(table.create_table)

    def get(self, owner: str, name: str, version: str) -> Registration | None:
        try:
            with storage_errors():
                entity = self._registrations.get_entity(owner, sort_key(name, version))
        except NotFound:
            return None
        return _registration(entity)

    def insert(self, registration: Registration) -> Registration:
        with storage_errors():
            metadata = self._registrations.create_entity(_registration_entity(registration))
        registration.etag = metadata["etag"]
        return registration

    def replace(self, registration: Registration) -> Registration:
        with storage_errors(missing_is_conflict=True):
            metadata = self._registrations.update_entity(
                _registration_entity(registration),
                mode=UpdateMode.REPLACE,
                etag=registration.etag,
                match_condition=MatchConditions.IfNotModified,
            )
        registration.etag = metadata["etag"]
        return registration

    def delete(self, registration: Registration) -> None:
        # The record first (If-Match): if it changed meanwhile nothing is deleted at all; once it
        # is gone, a worker's next checkpoint fails and it stops.
        with storage_errors(missing_is_conflict=True):
            self._registrations.delete_entity(
                registration.owner,
                sort_key(registration.name, registration.version),
                etag=registration.etag,
                match_condition=MatchConditions.IfNotModified,
            )
        self._delete_partition(self._files, registration.key)

    def _delete_partition(self, table: TableClient, partition: str) -> None:
        with storage_errors():
            rows = list(table.query_entities("PartitionKey eq @pk", parameters={"pk": partition}))
        for batch in _batches([("delete", e) for e in rows]):
            with storage_errors():
                table.submit_transaction(batch)

    def _file_entities(self, registration: Registration) -> Iterator[Any]:
        with storage_errors():
            yield from self._files.query_entities("PartitionKey eq @pk", parameters={"pk": registration.key})

    def files(self, registration: Registration) -> list[FileProgress]:
        return sorted((_file(e) for e in self._file_entities(registration)), key=lambda f: f.index)

    def insert_files(self, registration: Registration, files: list[FileProgress]) -> None:
        operations = [("create", _file_entity(registration.key, f)) for f in files]
        for batch in _batches(operations):
            with storage_errors():
                self._files.submit_transaction(batch)

    def replace_file(self, registration: Registration, progress: FileProgress) -> FileProgress:
        with storage_errors(missing_is_conflict=True):
            metadata = self._files.update_entity(
                _file_entity(registration.key, progress),
                mode=UpdateMode.REPLACE,
                etag=progress.etag,
                match_condition=MatchConditions.IfNotModified,
            )
        progress.etag = metadata["etag"]
        return progress

    def stale_in_progress(self, before: datetime) -> Iterator[Registration]:
        with storage_errors():
            for entity in self._registrations.query_entities(
                "state eq @state and last_progress_at lt @before",
                parameters={"state": State.IN_PROGRESS.value, "before": before},
            ):
                yield _registration(entity)

    # -- the public catalog, listing and the change log --

    def publish(self, registration: Registration) -> None:
        """List it publicly (idempotent): the catalog is a projection of the registrations."""
        entity = {
            key: value
            for key, value in _registration_entity(registration).items()
            if key in _SUMMARY_COLUMNS or key.startswith(("in_", "out_"))
        }
        entity |= {
            "PartitionKey": PUBLIC,
            "RowKey": sort_key(registration.name, registration.version, registration.owner),
        }
        with storage_errors():
            self._catalog.upsert_entity(entity, mode=UpdateMode.REPLACE)

    def unpublish(self, registration: Registration) -> None:
        with storage_errors():
            self._catalog.delete_entity(
                PUBLIC, sort_key(registration.name, registration.version, registration.owner)
            )

    def own_models(self, owner: str, after: str, filters: ModelFilter) -> Iterator[ModelSummary]:
        """The owner's registrations in any state, in key order, after the key `after`."""
        clauses, parameters = _filter_query(filters)
        clauses = ["PartitionKey eq @owner", "RowKey gt @after", *clauses]
        parameters |= {"owner": owner, "after": after}
        yield from self._summaries(self._registrations, clauses, parameters)

    def public_models(self, after: str, filters: ModelFilter, exclude_owner: str) -> Iterator[ModelSummary]:
        """Public models that finished once, of owners other than `exclude_owner`, in key order."""
        clauses, parameters = _filter_query(filters)
        clauses = ["PartitionKey eq @public", "RowKey gt @after", "owner ne @caller", *clauses]
        parameters |= {"public": PUBLIC, "after": after, "caller": exclude_owner}
        if filters.owner is not None:
            clauses.append("owner eq @owner")
            parameters["owner"] = filters.owner
        yield from self._summaries(self._catalog, clauses, parameters)

    def _summaries(
        self, table: TableClient, clauses: list[str], parameters: dict[str, Any]
    ) -> Iterator[ModelSummary]:
        with storage_errors():
            entities = table.query_entities(
                " and ".join(clauses), parameters=parameters, select=_SUMMARY_COLUMNS, results_per_page=200
            )
            for entity in entities:
                yield _summary(entity)

    def record_change(self, registration: Registration, change: dict[str, Any]) -> None:
        """Append to the model's change log (newest first)."""
        inverted = f"{2**63 - int(registration.updated_at.timestamp() * 1_000_000):019d}"
        entity = {"PartitionKey": registration.key, "RowKey": inverted, "change": json.dumps(change)}
        with storage_errors():
            self._changes.upsert_entity(entity)

    def changes(self, registration: Registration) -> list[dict[str, Any]]:
        with storage_errors():
            entities = self._changes.query_entities(
                "PartitionKey eq @pk", parameters={"pk": registration.key}
            )
            return [json.loads(e["change"]) for e in entities]

    def forget(self, registration: Registration) -> None:
        """Delete the registration with everything recorded about it: off the list before and
        after (a publish racing with the delete cannot leave it listed), the record (If-Match),
        then its file progress and change log."""
        with contextlib.suppress(NotFound):
            self.unpublish(registration)
        self.delete(registration)
        self._delete_partition(self._changes, registration.key)
        with contextlib.suppress(NotFound):
            self.unpublish(registration)


def _batches(operations: list[Any]) -> Iterator[list[Any]]:
    for start in range(0, len(operations), _BATCH):
        yield operations[start : start + _BATCH]
