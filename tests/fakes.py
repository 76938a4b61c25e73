"""In-memory fakes of the ports in registry/ports.py, and builders for settings and request bodies.

The fakes behave like the real services where the services' correctness depends on it:
- the store copies records in and out and enforces ETag conditions, as Table Storage does;
- its public catalog is a snapshot taken when a model is published, and listing walks keys in
  the order and with the server-side filters of adapters/tables.py (the language filter is the
  service's own);
- the copier really copies byte ranges of its sources into staged blocks, keeps uncommitted and
  committed block lists apart, and is safe to call from the copy worker's thread pool;
- it is also the ModelFiles port: it reads committed blobs and hands out read URLs (with a fake
  `sig=`) that it accepts back as copy sources, as Azure accepts the registry's own SAS URLs.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import itertools
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

from registry.records import (
    AlreadyExists,
    ConcurrentUpdate,
    CopyJob,
    FileProgress,
    Job,
    ModelFilter,
    ModelSummary,
    NotFound,
    Registration,
    SourceError,
    SourceInfo,
    State,
    StorageUnavailable,
    parse_job,
    sort_key,
)
from registry.settings import Settings, load_settings

T0 = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)


class FakeClock:
    """The wall clock the services see: it moves only when a test moves it."""

    def __init__(self, start: datetime = T0) -> None:
        self.current = start

    def __call__(self) -> datetime:
        return self.current

    def advance(self, seconds: float) -> None:
        self.current += timedelta(seconds=seconds)


TEST_SEALING_KEY = bytes(range(32))
SAS = "sv=2024-05-04&se=2030-01-01T00%3A00%3A00Z&sr=b&sp=r&sig=c2VjcmV0LXNpZ25hdHVyZQ%3D%3D"
DOCKER_PASSWORD = "hunter2-the-registry-password"


# --------------------------------------------------------------------------------------------
# Settings and request bodies
# --------------------------------------------------------------------------------------------


def settings_env(**overrides: str) -> dict[str, str]:
    env = {
        "AzureWebJobsStorage": "UseDevelopmentStorage=true",
        "REGISTRY_SEALING_KEY": base64.b64encode(TEST_SEALING_KEY).decode(),
    }
    env.update(overrides)
    return {k: v for k, v in env.items() if v is not None}


def make_settings(**overrides: str) -> Settings:
    """Settings for tests; pass app settings by name, e.g. make_settings(REGISTRY_DEV_MODE="true")."""
    return load_settings(settings_env(**overrides))


def source_url(blob: str, *, account: str = "storageaccount", container: str = "gptc") -> str:
    """A source URL on the default allow-list, with a SAS query that must never leak."""
    return f"https://{account}.blob.core.windows.net/{container}/{blob}?{SAS}"


def registration_body(**changes: Any) -> dict[str, Any]:
    """A small valid registration body. Keyword arguments replace top-level sections."""
    body: dict[str, Any] = {
        "model_config": {
            "type": "DECODER",
            "description": "A small test model",
            "inference_properties": {"entry_script": "score.py", "conda_env": "env.yml"},
        },
        "model_files": {
            "score.py": source_url("score.py"),
            "env.yml": source_url("env.yml"),
            "index.md": source_url("index.md"),
            "weights/model.bin": source_url("model.bin"),
        },
        "model_metainfo": {
            "input_types": ["SOURCE_CODE"],
            "input_languages": ["PYTHON"],
            "input_description": "Code before the cursor",
            "output_types": ["SOURCE_CODE"],
            "output_languages": ["PYTHON"],
            "output_description": "Generated code",
            "num_params": 125_000_000,
            "index_page_file": "index.md",
        },
    }
    body.update(copy.deepcopy(changes))
    return body


def deepdev_example_body() -> dict[str, Any]:
    """The DeepDev add_model_request example, with ARCHITECTURE.md's resolutions applied:
    index_page_file is a key of model_files, languages are plain lists of strings, and the
    visibility flag is model_config.private."""
    base = "https://storageaccount.blob.core.windows.net/gptc"
    files = {
        "inference.py": "my_inference_script.py",
        "inference.yml": "environment.yml",
        "train.py": "run_training.py",
        "train.yml": "training_env.yml",
        "model.pt": "checkpoint.pt",
        "vocab.model": "vocabulary.file",
        "index.md": "index.md",
    }
    image = "azureml/openmpi3.1.2-cuda10.1-cudnn7-ubuntu18.04"
    return {
        "model_config": {
            "type": "ENCODER",
            "description": (
                "Code generation decoder model trained on Python, C#, JavaScript and TypeScript dataset."
            ),
            "inference_properties": {
                "entry_script": "inference.py",
                "conda_env": "inference.yml",
                "docker_image": image,
                "docker_registry": {
                    "url": "mcr.microsoft.com",
                    "username": "foo",
                    "password": DOCKER_PASSWORD,
                },
            },
            "training_properties": {
                "entry_script": "train.py",
                "args": {"--learning_rate": 0.001, "-v": ""},
                "conda_env": "train.yml",
                "docker_image": image,
            },
            "private": True,
        },
        "model_files": {key: f"{base}/{blob}?{SAS}" for key, blob in files.items()},
        "model_metainfo": {
            "input_types": ["SOURCE_CODE"],
            "input_languages": ["CSHARP"],
            "input_description": "Code context before the generation point",
            "output_types": ["SOURCE_CODE"],
            "output_languages": ["CSHARP"],
            "output_description": "Generated code",
            "num_params": 50000000,
            "index_page_file": "index.md",
        },
        "private_packages": [f"{base}/private_package.whl?{SAS}"],
    }


# --------------------------------------------------------------------------------------------
# RegistrationStore
# --------------------------------------------------------------------------------------------


class FakeRegistrationStore:
    """Registrations and file progress in memory, with Table Storage's ETag semantics."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._etags = itertools.count(1)
        self._registrations: dict[tuple[str, str, str], Registration] = {}
        self._files: dict[str, dict[int, FileProgress]] = {}
        # The public catalog (sort_key(name, version, owner) -> the row written when published)
        # and the change log (registration key -> inverted timestamp -> change).
        self._catalog: dict[str, _ListingRow] = {}
        self._changes: dict[str, dict[str, dict[str, Any]]] = {}
        # Method names whose next calls raise StorageUnavailable (a test sets these).
        self.unavailable: set[str] = set()
        self.calls: list[str] = []

    def _new_etag(self) -> str:
        return f"W/\"datetime'{next(self._etags)}'\""

    def _enter(self, method: str) -> None:
        self.calls.append(method)
        if method in self.unavailable:
            raise StorageUnavailable(f"fake storage: {method} is unavailable")

    @staticmethod
    def _key(registration: Registration) -> tuple[str, str, str]:
        return (registration.owner, registration.name, registration.version)

    # -- the port --

    def get(self, owner: str, name: str, version: str) -> Registration | None:
        with self._lock:
            self._enter("get")
            stored = self._registrations.get((owner, name, version))
            return copy.deepcopy(stored)

    def insert(self, registration: Registration) -> Registration:
        with self._lock:
            self._enter("insert")
            key = self._key(registration)
            if key in self._registrations:
                raise AlreadyExists()
            registration.etag = self._new_etag()
            self._registrations[key] = copy.deepcopy(registration)
            return registration

    def replace(self, registration: Registration) -> Registration:
        with self._lock:
            self._enter("replace")
            key = self._key(registration)
            stored = self._registrations.get(key)
            if stored is None or registration.etag is None or stored.etag != registration.etag:
                raise ConcurrentUpdate()
            registration.etag = self._new_etag()
            self._registrations[key] = copy.deepcopy(registration)
            return registration

    def delete(self, registration: Registration) -> None:
        with self._lock:
            self._enter("delete")
            key = self._key(registration)
            stored = self._registrations.get(key)
            if stored is None or registration.etag is None or stored.etag != registration.etag:
                raise ConcurrentUpdate()
            del self._registrations[key]
            self._files.pop(registration.key, None)

    def files(self, registration: Registration) -> list[FileProgress]:
        with self._lock:
            self._enter("files")
            rows = self._files.get(registration.key, {})
            return [copy.deepcopy(rows[i]) for i in sorted(rows)]

    def insert_files(self, registration: Registration, files: list[FileProgress]) -> None:
        with self._lock:
            self._enter("insert_files")
            rows = self._files.setdefault(registration.key, {})
            if any(f.index in rows for f in files):
                raise AlreadyExists()  # the batch is a transaction: all or nothing
            for f in files:
                stored = copy.deepcopy(f)
                stored.etag = self._new_etag()
                rows[f.index] = stored

    def replace_file(self, registration: Registration, progress: FileProgress) -> FileProgress:
        with self._lock:
            self._enter("replace_file")
            rows = self._files.get(registration.key, {})
            stored = rows.get(progress.index)
            if stored is None or progress.etag is None or stored.etag != progress.etag:
                raise ConcurrentUpdate()
            progress.etag = self._new_etag()
            rows[progress.index] = copy.deepcopy(progress)
            return progress

    def stale_in_progress(self, before: datetime) -> Iterable[Registration]:
        with self._lock:
            self._enter("stale_in_progress")
            return [
                copy.deepcopy(r)
                for r in self._registrations.values()
                if r.state is State.IN_PROGRESS and r.last_progress_at < before
            ]

    def publish(self, registration: Registration) -> None:
        with self._lock:
            self._enter("publish")
            row = _ListingRow.of(registration)
            self._catalog[row.summary.sort_key] = row

    def unpublish(self, registration: Registration) -> None:
        with self._lock:
            self._enter("unpublish")
            if self._catalog.pop(_catalog_key(registration), None) is None:
                raise NotFound()

    def own_models(self, owner: str, after: str, filters: ModelFilter) -> Iterator[ModelSummary]:
        """The owner's partition of the registrations table: "RowKey gt after" and the filters."""
        with self._lock:
            self._enter("own_models")
            rows = sorted(
                (sort_key(r.name, r.version), _ListingRow.of(r))
                for r in self._registrations.values()
                if r.owner == owner
            )
        for row_key, row in rows:
            if row_key > after and row.matches(filters):
                yield row.summary

    def public_models(self, after: str, filters: ModelFilter, exclude_owner: str) -> Iterator[ModelSummary]:
        """The catalog partition: "RowKey gt after", "owner ne caller", the filters and the owner's."""
        with self._lock:
            self._enter("public_models")
            rows = sorted(self._catalog.items())
        for row_key, row in rows:
            summary = row.summary
            if (
                row_key > after
                and summary.owner != exclude_owner
                and (filters.owner is None or summary.owner == filters.owner)
                and row.matches(filters)
            ):
                yield summary

    def record_change(self, registration: Registration, change: dict[str, Any]) -> None:
        with self._lock:
            self._enter("record_change")
            # As the real log: keyed by an inverted timestamp (an upsert), so newest sorts first.
            inverted = f"{2**63 - int(registration.updated_at.timestamp() * 1_000_000):019d}"
            self._changes.setdefault(registration.key, {})[inverted] = copy.deepcopy(change)

    def changes(self, registration: Registration) -> list[dict[str, Any]]:
        with self._lock:
            self._enter("changes")
            rows = self._changes.get(registration.key, {})
            return [copy.deepcopy(rows[k]) for k in sorted(rows)]

    def forget(self, registration: Registration) -> None:
        """In the real adapter's order: off the list, the registration (If-Match; a failed
        condition deletes nothing more), then file progress and change log."""
        with self._lock:
            self._enter("forget")
            self._catalog.pop(_catalog_key(registration), None)
            key = self._key(registration)
            stored = self._registrations.get(key)
            if stored is None or registration.etag is None or stored.etag != registration.etag:
                raise ConcurrentUpdate()
            del self._registrations[key]
            self._files.pop(registration.key, None)
            self._changes.pop(registration.key, None)

    # -- for tests: look and tamper without going through the port --

    def catalog(self) -> list[ModelSummary]:
        """The public catalog in key order."""
        with self._lock:
            return [self._catalog[k].summary for k in sorted(self._catalog)]

    def peek_changes(self, registration: Registration) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._changes.get(registration.key, {})
            return [copy.deepcopy(rows[k]) for k in sorted(rows)]

    def peek(self, owner: str, name: str, version: str) -> Registration | None:
        with self._lock:
            return copy.deepcopy(self._registrations.get((owner, name, version)))

    def all(self) -> list[Registration]:
        with self._lock:
            return [copy.deepcopy(r) for r in self._registrations.values()]

    def peek_files(self, registration: Registration) -> list[FileProgress]:
        with self._lock:
            rows = self._files.get(registration.key, {})
            return [copy.deepcopy(rows[i]) for i in sorted(rows)]

    def update(self, owner: str, name: str, version: str, **changes: Any) -> Registration:
        """Change a stored registration as another process would (its etag changes)."""
        with self._lock:
            stored = self._registrations[(owner, name, version)]
            for attribute, value in changes.items():
                setattr(stored, attribute, value)
            stored.etag = self._new_etag()
            return copy.deepcopy(stored)


def _catalog_key(registration: Registration) -> str:
    return sort_key(registration.name, registration.version, registration.owner)


@dataclass(frozen=True)
class _ListingRow:
    """What a listing reads of one model, with the columns its server-side filters look at."""

    summary: ModelSummary
    input_types: frozenset[str]
    output_types: frozenset[str]

    @classmethod
    def of(cls, r: Registration) -> _ListingRow:
        meta = r.document.get("model_metainfo", {})
        languages = {x.lower() for side in ("input", "output") for x in meta.get(f"{side}_languages") or ()}
        summary = ModelSummary(
            name=r.name,
            version=r.version,
            owner=r.owner,
            owner_name=r.owner_name,
            type=r.model_type,
            description=r.description,
            private=r.private,
            state=r.state.value,
            trainable=r.trainable,
            languages=tuple(sorted(languages)),
            parent_model=copy.deepcopy(r.parent),
            created_at=r.created_at,
            updated_at=r.updated_at,
        )
        return cls(summary, frozenset(meta.get("input_types", ())), frozenset(meta.get("output_types", ())))

    def matches(self, filters: ModelFilter) -> bool:
        """_filter_query's clauses: name (a key range), version, type, trainable, input/output type."""
        s = self.summary
        return (
            (filters.name is None or s.name == filters.name)
            and (filters.version is None or s.version == filters.version)
            and (filters.type is None or s.type == filters.type)
            and (filters.trainable is None or s.trainable == filters.trainable)
            and (not filters.input_type or filters.input_type in self.input_types)
            and (not filters.output_type or filters.output_type in self.output_types)
        )


# --------------------------------------------------------------------------------------------
# JobQueue
# --------------------------------------------------------------------------------------------


@dataclass
class SentJob:
    job: CopyJob
    delay_seconds: float


class FakeJobQueue:
    """Records what was sent (through the job's own JSON form, as the real queue carries it)."""

    def __init__(self) -> None:
        self.sent: list[SentJob] = []
        self.failing = False

    def send(self, job: Job, delay_seconds: float = 0) -> None:
        if self.failing:
            raise StorageUnavailable("fake queue: unavailable")
        self.sent.append(SentJob(parse_job(job.to_json()), delay_seconds))  # type: ignore[arg-type]

    def send_batch(self, jobs: Sequence[Job]) -> None:
        for job in jobs:
            self.send(job)

    @property
    def jobs(self) -> list[CopyJob]:
        return [s.job for s in self.sent]

    def take(self) -> list[CopyJob]:
        """Everything sent so far, emptying the queue."""
        jobs, self.sent = self.jobs, []
        return jobs


# --------------------------------------------------------------------------------------------
# BlobCopier
# --------------------------------------------------------------------------------------------


class SimulatedCrash(BaseException):
    """The process dying mid-copy: not an Exception, so nothing in the service handles it."""


@dataclass
class _Source:
    data: bytes
    etag: str
    content_md5: str = ""


@dataclass
class _Blob:
    block_ids: list[str]
    blocks: dict[str, bytes]
    content_md5: str
    etag: str = ""

    @property
    def data(self) -> bytes:
        return b"".join(self.blocks[i] for i in self.block_ids)


@dataclass(frozen=True)
class StageCall:
    path: str
    block_id: str
    url: str
    offset: int
    length: int


# The registry's own container, as the ModelFiles fake names it in read URLs.
REGISTRY_CONTAINER_URL = "https://registryaccount.blob.core.windows.net/models"
_FAKE_ACCOUNT_KEY = b"fake-registry-account-key"


def _read_signature(path: str, expiry: str) -> str:
    return hashlib.sha256(_FAKE_ACCOUNT_KEY + f"\n{path}\n{expiry}\nr".encode()).hexdigest()[:32]


@dataclass
class FakeBlobCopier:
    """Sources by URL; a destination container with staged (uncommitted) and committed blocks.

    Also the ModelFiles port over that container. A URL from read_url is a valid copy source for
    that blob (as a SAS URL of the registry's own blob is for Put Block From URL) while its
    signature matches and it has not expired; the blob is read as it is when the copy reads it.
    """

    sources: dict[str, _Source] = field(default_factory=dict)
    staged: dict[str, dict[str, bytes]] = field(default_factory=dict)
    committed: dict[str, _Blob] = field(default_factory=dict)
    stage_calls: list[StageCall] = field(default_factory=list)
    commit_calls: list[tuple[str, list[str]]] = field(default_factory=list)
    source_info_calls: list[str] = field(default_factory=list)
    # url -> the SourceError that source_info and/or stage_block raise for it
    info_errors: dict[str, SourceError] = field(default_factory=dict)
    stage_errors: dict[str, SourceError] = field(default_factory=dict)
    # Raise SimulatedCrash on this (1-based) call of stage_block.
    crash_on_stage_call: int | None = None
    # Called (outside the lock) before each stage_block, with the call's number (1-based).
    before_stage: Callable[[int, StageCall], None] | None = None
    # Called (outside the lock) after each successful commit, with the blob's path.
    after_commit: Callable[[str], None] | None = None
    read_url_calls: list[str] = field(default_factory=list)
    deleted_prefixes: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _etags: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    # -- setting up sources --

    def put_source(self, url: str, data: bytes, *, content_md5: str = "") -> str:
        """Create or overwrite a source (a new ETag each time); returns its ETag."""
        with self._lock:
            etag = f'"0x8D{next(self._etags):012X}"'
            self.sources[url] = _Source(bytes(data), etag, content_md5)
            return etag

    def delete_source(self, url: str) -> None:
        with self._lock:
            self.sources.pop(url, None)

    def fail(
        self, url: str, *, permanent: bool, reason: str = "", on: tuple[str, ...] = ("info", "stage")
    ) -> None:
        error = SourceError(
            reason
            or ("the source does not exist (404)" if permanent else "the source could not be reached (503)"),
            permanent=permanent,
        )
        if "info" in on:
            self.info_errors[url] = error
        if "stage" in on:
            self.stage_errors[url] = error

    def heal(self, url: str) -> None:
        self.info_errors.pop(url, None)
        self.stage_errors.pop(url, None)

    # -- the port --

    def source_info(self, url: str) -> SourceInfo:
        with self._lock:
            self.source_info_calls.append(url)
            if url in self.info_errors:
                raise self.info_errors[url]
            source = self._readable(url)
            if source is None:
                raise SourceError("the source does not exist (404)", permanent=True)
            return SourceInfo(size=len(source.data), etag=source.etag, content_md5=source.content_md5)

    def _readable(self, url: str) -> _Source | None:
        """The source at a URL: an external one, or a committed blob of ours via a read URL."""
        source = self.sources.get(url)
        if source is not None or not url.startswith(REGISTRY_CONTAINER_URL + "/"):
            return source
        parts = urlsplit(url)
        path = unquote(parts.path[len(urlsplit(REGISTRY_CONTAINER_URL).path) + 1 :])
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        expiry, signature = query.get("se", ""), query.get("sig", "")
        if signature != _read_signature(path, expiry):
            raise SourceError("server failed to authenticate the request (403)", permanent=True)
        if datetime.fromisoformat(expiry) < datetime.now(UTC):
            raise SourceError("the SAS expired (403)", permanent=True)
        blob = self.committed.get(path)
        return _Source(blob.data, blob.etag, blob.content_md5) if blob else None

    def staged_blocks(self, path: str) -> Mapping[str, int]:
        with self._lock:
            return {block_id: len(data) for block_id, data in self.staged.get(path, {}).items()}

    def committed_size(self, path: str, block_ids: list[str]) -> int | None:
        with self._lock:
            blob = self.committed.get(path)
            if blob is None or blob.block_ids != block_ids:
                return None
            return len(blob.data)

    def stage_block(self, path: str, block_id: str, url: str, offset: int, length: int) -> None:
        call = StageCall(path, block_id, url, offset, length)
        with self._lock:
            self.stage_calls.append(call)
            number = len(self.stage_calls)
        if self.before_stage is not None:
            self.before_stage(number, call)
        if self.crash_on_stage_call is not None and number >= self.crash_on_stage_call:
            raise SimulatedCrash(f"crashed on stage call {number}")
        with self._lock:
            if url in self.stage_errors:
                raise self.stage_errors[url]
            source = self._readable(url)
            if source is None:
                raise SourceError("the source does not exist (404)", permanent=True)
            if offset < 0 or length <= 0 or offset + length > len(source.data):
                raise SourceError("the source is shorter than when the copy started (416)", permanent=True)
            blocks = self.staged.setdefault(path, {})
            if any(len(existing) != len(block_id) for existing in blocks):
                raise ValueError("InvalidBlobOrBlock: block ids of one blob must all have the same length")
            blocks[block_id] = source.data[offset : offset + length]

    def commit(self, path: str, block_ids: list[str], content_md5: str) -> int:
        with self._lock:
            self.commit_calls.append((path, list(block_ids)))
            staged = self.staged.get(path, {})
            previous = self.committed.get(path)
            available = {**(previous.blocks if previous else {}), **staged}
            missing = [i for i in block_ids if i not in available]
            if missing:
                raise ValueError(f"InvalidBlockList: {len(missing)} blocks were never staged")
            blob = _Blob(
                list(block_ids),
                {i: available[i] for i in block_ids},
                content_md5,
                etag=f'"0x8D{next(self._etags):012X}"',
            )
            self.committed[path] = blob
            self.staged.pop(path, None)  # Put Block List discards the uncommitted blocks
        if self.after_commit is not None:
            self.after_commit(path)
        return len(blob.data)

    # -- the ModelFiles port --

    def exists(self, path: str) -> bool:
        with self._lock:
            return path in self.committed

    def read(self, path: str, max_bytes: int) -> bytes | None:
        with self._lock:
            blob = self.committed.get(path)
            return blob.data[:max_bytes] if blob else None

    def read_url(self, path: str, ttl: timedelta) -> str:
        """A read-only URL with a fake SAS (whether or not the blob exists, as a SAS is)."""
        expiry = (datetime.now(UTC) + ttl).replace(microsecond=0).isoformat()
        with self._lock:
            self.read_url_calls.append(path)
        query = f"se={quote(expiry)}&sp=r&sig={_read_signature(path, expiry)}"
        return f"{REGISTRY_CONTAINER_URL}/{quote(path)}?{query}"

    def delete_prefix(self, prefix: str) -> int:
        with self._lock:
            self.deleted_prefixes.append(prefix)
            names = [name for name in self.committed if name.startswith(prefix)]
            for name in names:
                del self.committed[name]
                # Deleting a blob discards its uncommitted blocks; blocks staged for a blob that
                # was never committed are not listed, so they stay (Azure drops them in a week).
                self.staged.pop(name, None)
            return len(names)

    # -- for tests --

    def blobs_under(self, prefix: str) -> list[str]:
        with self._lock:
            return sorted(name for name in self.committed if name.startswith(prefix))

    def blob(self, path: str) -> bytes | None:
        with self._lock:
            blob = self.committed.get(path)
            return blob.data if blob else None

    def staged_count(self) -> int:
        with self._lock:
            return len(self.stage_calls)
