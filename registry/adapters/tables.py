"""RegistrationStore on Azure Table Storage.

Registrations: PartitionKey = owner, RowKey = "name:version" (both limited to a safe alphabet).
File progress: PartitionKey = "owner:name:version", RowKey = the file's zero-padded index.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from azure.core import MatchConditions
from azure.data.tables import TableClient, TableServiceClient, UpdateMode

from registry.adapters.errors import ignore_exists, storage_errors
from registry.records import EPOCH, FileProgress, FileState, NotFound, Registration, State

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


def _registration_entity(r: Registration) -> dict[str, Any]:
    entity: dict[str, Any] = {
        "PartitionKey": r.owner,
        "RowKey": f"{r.name}:{r.version}",
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
        "last_error": r.last_error,
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
        last_error=entity.get("last_error", ""),
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
    def __init__(self, registrations: TableClient, files: TableClient) -> None:
        self._registrations = registrations
        self._files = files

    @classmethod
    def create(cls, service: TableServiceClient, registrations: str, files: str) -> TableRegistrationStore:
        return cls(service.get_table_client(registrations), service.get_table_client(files))

    def ensure_tables(self) -> None:
        for table in (self._registrations, self._files):
            with storage_errors():
                ignore_exists(table.create_table)

    def get(self, owner: str, name: str, version: str) -> Registration | None:
        try:
            with storage_errors():
                entity = self._registrations.get_entity(owner, f"{name}:{version}")
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
        for batch in _batches([("delete", e) for e in self._file_entities(registration)]):
            with storage_errors():
                self._files.submit_transaction(batch)
        with storage_errors(missing_is_conflict=True):
            self._registrations.delete_entity(
                registration.owner,
                f"{registration.name}:{registration.version}",
                etag=registration.etag,
                match_condition=MatchConditions.IfNotModified,
            )

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


def _batches(operations: list[Any]) -> Iterator[list[Any]]:
    for start in range(0, len(operations), _BATCH):
        yield operations[start : start + _BATCH]
