"""How registrations are laid out in Table Storage: keys, entities, index rows and size limits.

Pure functions, no SDK: the Table adapter writes what these build, and the in-memory fake store
uses the same keys and limits, so the two cannot drift.

Registrations: PartitionKey = owner, RowKey = "name!version".
Listing rows: a model's summary columns plus the columns filters look at. In the owner's
  partition (beside the records) and in the public catalog (PartitionKey "public", RowKey
  "name!version!owner"), a model with languages also has one index row per language, RowKey
  "~L<hex of the language>~" + the model's key: a language filter then reads a key range, never the
  whole partition. '~' sorts after every character of a name, so the index rows follow the models.
File progress: PartitionKey = "owner:name:version:registration id", RowKey = the file's index.
Changes: PartitionKey = "owner:name:version", RowKey = an inverted timestamp (newest first).
"""

from __future__ import annotations

import hashlib
import json
import zlib
from datetime import datetime
from typing import Any

from registry.domain.errors import RecordTooLarge
from registry.domain.events import Event, EventType
from registry.domain.listing import ModelFilter, ModelSummary, sort_key
from registry.domain.model import EPOCH, FileProgress, Manifest, ManifestFile, Registration
from registry.domain.vocabulary import DataType, FileState, State

PUBLIC = "public"
INDEX_MARK = "~"  # RowKeys of index rows start with it; model keys sort below it
# Table Storage limits (per entity, per property): Azure's published figures.
MAX_ENTITY_BYTES = 1024 * 1024
MAX_PROPERTY_BYTES = 64 * 1024
MAX_PROPERTIES = 252  # besides PartitionKey, RowKey and Timestamp
_CHUNK = 60_000  # bytes of one binary property; larger values span numbered properties

# The columns a list reads of each model: enough to show and filter it, never the whole document.
SUMMARY_COLUMNS = [
    "owner", "owner_name", "name", "version", "model_type", "description", "private", "state",
    "trainable", "languages", "parent", "created_at", "updated_at",
]  # fmt: skip
FILTER_COLUMNS = ["model_type", "trainable", *(f"{s}_{t.value}" for s in ("in", "out") for t in DataType)]


# -- sizes --------------------------------------------------------------------------------------


def _value_size(value: Any) -> int:
    if isinstance(value, bool):
        return 1
    if isinstance(value, int):
        return 4 if -(2**31) <= value < 2**31 else 8
    if isinstance(value, float | datetime):
        return 8
    if isinstance(value, bytes | bytearray):
        return 4 + len(value)
    return 4 + len(str(value).encode("utf-16-le"))


def entity_size(entity: dict[str, Any]) -> int:
    """The entity's size as Table Storage counts it (4 bytes, the keys in UTF-16, and per property
    8 bytes, its name in UTF-16 and its value)."""
    size = 4 + 2 * (len(entity["PartitionKey"]) + len(entity["RowKey"]))
    for name, value in entity.items():
        if name not in ("PartitionKey", "RowKey"):
            size += 8 + 2 * len(name) + _value_size(value)
    return size


def check_fits(entity: dict[str, Any], what: str) -> None:
    """RecordTooLarge unless Table Storage can hold the entity."""
    size = entity_size(entity)
    if size > MAX_ENTITY_BYTES:
        raise RecordTooLarge(what, size, MAX_ENTITY_BYTES)
    if len(entity) - 2 > MAX_PROPERTIES:
        raise RecordTooLarge(f"{what} ({len(entity) - 2} properties)", size, MAX_ENTITY_BYTES)
    for name, value in entity.items():
        if isinstance(value, str | bytes) and _value_size(value) - 4 > MAX_PROPERTY_BYTES:
            raise RecordTooLarge(f"{what}: its {name}", _value_size(value) - 4, MAX_PROPERTY_BYTES)


def _put_chunks(entity: dict[str, Any], prefix: str, data: bytes) -> None:
    chunks = [data[i : i + _CHUNK] for i in range(0, len(data), _CHUNK)]
    entity[f"{prefix}_chunks"] = len(chunks)
    for i, chunk in enumerate(chunks):
        entity[f"{prefix}_{i}"] = chunk


def _get_chunks(entity: Any, prefix: str) -> bytes:
    return b"".join(bytes(entity[f"{prefix}_{i}"]) for i in range(int(entity.get(f"{prefix}_chunks", 0))))


def _put_json(entity: dict[str, Any], prefix: str, value: Any) -> None:
    _put_chunks(entity, prefix, zlib.compress(json.dumps(value).encode()))


def _get_json(entity: Any, prefix: str, default: Any) -> Any:
    data = _get_chunks(entity, prefix)
    return json.loads(zlib.decompress(data)) if data else default


# -- keys ---------------------------------------------------------------------------------------


def record_key(registration: Registration) -> tuple[str, str]:
    return registration.owner, sort_key(registration.name, registration.version)


def catalog_key(registration: Registration) -> str:
    return sort_key(registration.name, registration.version, registration.owner)


def files_partition(registration: Registration) -> str:
    return f"{registration.key}:{registration.registration_id}"


def file_row_key(index: int) -> str:
    return f"{index:04d}"


def language_prefix(language: str) -> str:
    """The RowKey prefix of a language's index rows (hex: any language spells a safe key)."""
    return f"{INDEX_MARK}L{language.lower().encode().hex()}{INDEX_MARK}"


def key_range(filters: ModelFilter, after: str) -> tuple[str, str]:
    """The RowKey range (exclusive bounds) a listing reads: the models (of one name, if the filter
    names one), or the same range in one language's index rows."""
    low, high = after, INDEX_MARK
    if filters.name is not None:
        # Every key of this name lies between "name!" and 'name"' ('"' follows '!').
        low, high = max(after, f"{filters.name}!"), f'{filters.name}"'
    if filters.language is None:
        return low, high
    prefix = language_prefix(filters.language)
    return prefix + low, prefix + high


# -- records ------------------------------------------------------------------------------------


def listing_columns(r: Registration) -> dict[str, Any]:
    """What a list shows and filters on, derived from the record (queries cannot look inside JSON)."""
    meta = r.metainfo
    columns: dict[str, Any] = {
        "owner": r.owner,
        "owner_name": r.owner_name,
        "name": r.name,
        "version": r.version,
        "model_type": r.model_type,
        "description": r.description,
        "private": r.private,
        "state": r.state.value,
        "trainable": r.trainable,
        "languages": "|" + "|".join(r.languages) + "|",
        "parent": json.dumps(r.parent) if r.parent else "",
        "created_at": r.created_at,
        "updated_at": r.updated_at,
    }
    for data_type in DataType:
        columns[f"in_{data_type.value}"] = data_type.value in meta.get("input_types", ())
        columns[f"out_{data_type.value}"] = data_type.value in meta.get("output_types", ())
    return columns


def index_rows(partition: str, model_key: str, r: Registration) -> dict[str, dict[str, Any]]:
    """The language index rows of a model: RowKey -> entity, each a copy of the listing columns."""
    columns = listing_columns(r)
    rows = {}
    for language in r.languages:
        row_key = language_prefix(language) + model_key
        rows[row_key] = {"PartitionKey": partition, "RowKey": row_key, **columns}
    return rows


def index_signature(r: Registration) -> str:
    """Changes exactly when the index rows would: then (and only then) they are rewritten."""
    if not r.languages:
        return ""
    columns = json.dumps(listing_columns(r), sort_keys=True, default=str)
    return hashlib.sha256(columns.encode()).hexdigest()[:16]


def registration_entity(r: Registration) -> dict[str, Any]:
    partition, row = record_key(r)
    entity: dict[str, Any] = {
        "PartitionKey": partition,
        "RowKey": row,
        **listing_columns(r),
        "registration_id": r.registration_id,
        "message": r.message,
        "body_digest": r.body_digest,
        "last_progress_at": r.last_progress_at,
        "picked_up": r.picked_up,
        "lease_id": r.lease_id,
        "lease_until": r.lease_until,
        "attempt": r.attempt,
        "takeovers": r.takeovers,
        "slices": r.slices,
        "revision": r.revision,
        "manifest_digest": r.manifest_digest,
        "last_error": r.last_error,
        "finished_once": r.finished_once,
        "indexed": index_signature(r),
        "indexed_languages": "|".join(r.languages),
    }
    _put_json(entity, "document", r.document)
    _put_json(entity, "file_names_z", r.file_names)
    _put_json(entity, "refresh_z", r.refresh_files)
    _put_json(entity, "last_change_z", r.last_change)
    _put_chunks(entity, "sealed", r.sealed)
    return entity


def registration(entity: Any) -> Registration:
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
        document=_get_json(entity, "document", {}),
        file_names=_get_json(entity, "file_names_z", []),
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
        revision=int(entity.get("revision", 0)),
        manifest_digest=entity.get("manifest_digest", ""),
        refresh_files=_get_json(entity, "refresh_z", []),
        last_error=entity.get("last_error", ""),
        finished_once=bool(entity.get("finished_once", False)),
        parent=json.loads(entity["parent"]) if entity.get("parent") else None,
        last_change=_get_json(entity, "last_change_z", None),
        etag=entity.metadata["etag"] if hasattr(entity, "metadata") else None,
    )


def stored_index(entity: Any) -> tuple[str, list[str]]:
    """The signature and languages of the index rows written with this record."""
    languages = [x for x in str(entity.get("indexed_languages", "")).split("|") if x]
    return str(entity.get("indexed", "")), languages


def summary(entity: Any) -> ModelSummary:
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


def filter_terms(filters: ModelFilter) -> list[tuple[str, Any]]:
    """The filters as (column, value) equalities (name and language pick the key range instead;
    the owner is the caller's to add)."""
    terms: list[tuple[str, Any]] = []
    if filters.version is not None:
        terms.append(("version", filters.version))
    if filters.type is not None:
        terms.append(("model_type", str(filters.type)))
    if filters.trainable is not None:
        terms.append(("trainable", filters.trainable))
    if filters.input_type is not None:
        terms.append((f"in_{filters.input_type}", True))
    if filters.output_type is not None:
        terms.append((f"out_{filters.output_type}", True))
    return terms


def filter_clauses(filters: ModelFilter) -> tuple[list[str], dict[str, Any]]:
    """The filter terms as Table query clauses with their parameters."""
    clauses: list[str] = []
    parameters: dict[str, Any] = {}
    for column, value in filter_terms(filters):
        parameter = f"p{len(parameters)}"
        clauses.append(f"{column} eq @{parameter}")
        parameters[parameter] = value
    return clauses, parameters


def indexed_key(row_key: str) -> str | None:
    """The model key an index row's RowKey points at (None for a model's own row)."""
    if not row_key.startswith(INDEX_MARK):
        return None
    return row_key.split(INDEX_MARK, 2)[2]


# -- file rows and changes ----------------------------------------------------------------------


def file_entity(partition: str, f: FileProgress) -> dict[str, Any]:
    return {
        "PartitionKey": partition,
        "RowKey": file_row_key(f.index),
        "target": f.target,
        "state": f.state.value,
        "size": f.size if f.size is not None else -1,
        "bytes_copied": f.bytes_copied,
        "source_etag": f.source_etag,
        "block_size": f.block_size,
        "content_md5": f.content_md5,
        "error": f.error,
        "generation": f.generation,
        "blob_etag": f.blob_etag,
        "bytes_hashed": f.bytes_hashed,
        "hash_state": f.hash_state,
        "expected_sha256": f.expected_sha256,
        "served_generation": f.served_generation,
        "served_size": f.served_size,
        "served_sha256": f.served_sha256,
        "retired_at": f.retired_at or EPOCH,
    }


def file_progress(entity: Any) -> FileProgress:
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
        generation=int(entity.get("generation", 0)),
        blob_etag=entity.get("blob_etag", ""),
        bytes_hashed=int(entity.get("bytes_hashed", 0)),
        hash_state=entity.get("hash_state", ""),
        expected_sha256=entity.get("expected_sha256", ""),
        served_generation=int(entity.get("served_generation", -1)),
        served_size=int(entity.get("served_size", -1)),
        served_sha256=entity.get("served_sha256", ""),
        retired_at=None if entity.get("retired_at", EPOCH) == EPOCH else entity["retired_at"],
        etag=entity.metadata["etag"] if hasattr(entity, "metadata") else None,
    )


def history_partition(owner: str, name: str, version: str) -> str:
    return f"{owner}:{name}:{version}"  # the record's key: kept across registrations


def history_row_key(time: datetime, event_id: str) -> str:
    """Newest first, and one row per event however often it is recorded."""
    inverted = 2**63 - int(time.timestamp() * 1_000_000)
    return f"{inverted:019d}-{event_id}"


def history_entity(event: Event) -> dict[str, Any]:
    return {
        **event_entity(history_partition(event.owner, event.name, event.version), event),
        "RowKey": history_row_key(event.time, event.id),
        "event_owner": event.owner,
    }


def manifests_partition(registration: Registration) -> str:
    return f"{registration.key}:{registration.registration_id}"


def manifest_entity(registration: Registration, manifest: Manifest) -> dict[str, Any]:
    entity: dict[str, Any] = {
        "PartitionKey": manifests_partition(registration),
        "RowKey": f"{manifest.revision:09d}",
        "digest": manifest.digest,
        "key_id": manifest.key_id,
        "by": manifest.by,
        "finished_at": manifest.finished_at,
    }
    _put_json(entity, "body", manifest.body())
    _put_json(entity, "signature_z", manifest.signature)
    return entity


def manifest(entity: Any) -> Manifest:
    body = _get_json(entity, "body", {})
    return Manifest(
        name=body["name"],
        version=body["version"],
        owner=body["owner"],
        revision=int(body["revision"]),
        files=tuple(ManifestFile(f["path"], int(f["size"]), f["sha256"]) for f in body["files"]),
        parent=body.get("parent"),
        created_at=datetime.fromisoformat(body["created_at"]),
        finished_at=datetime.fromisoformat(body["finished_at"]),
        by=entity.get("by", ""),
        digest=entity.get("digest", ""),
        key_id=entity.get("key_id", ""),
        signature=_get_json(entity, "signature_z", None),
    )


# -- the outbox: an owner's pending events, in the owner's partition of the registrations table --

OUTBOX_MARK = INDEX_MARK + "E"
OUTBOX_RANGE = (OUTBOX_MARK, INDEX_MARK + "F")


def event_row_key(event: Event) -> str:
    return f"{OUTBOX_MARK}{event.time.strftime('%Y%m%dT%H%M%S%f')}-{event.id}"


def event_entity(owner: str, event: Event) -> dict[str, Any]:
    entity: dict[str, Any] = {
        "PartitionKey": owner,
        "RowKey": event_row_key(event),
        "event_type": event.type.value,
        "event_name": event.name,
        "event_version": event.version,
        "event_time": event.time,
        "change": event.change,
        "public": event.public,
    }
    _put_json(entity, "data_z", event.data)
    return entity


def event(entity: Any) -> Event:
    return Event(
        type=EventType(entity["event_type"]),
        owner=entity.get("event_owner") or entity["PartitionKey"],
        name=entity["event_name"],
        version=entity["event_version"],
        time=entity["event_time"],
        change=entity["change"],
        public=bool(entity["public"]),
        data=_get_json(entity, "data_z", {}),
    )
