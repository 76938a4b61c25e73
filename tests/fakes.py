"""In-memory fakes of the ports in registry/ports.py, and builders for settings and request bodies.

The fakes behave like the real services where the services' correctness depends on it:
- the store copies records in and out and enforces ETag conditions, as Table Storage does;
- the copier really copies byte ranges of its sources into staged blocks, keeps uncommitted and
  committed block lists apart, and is safe to call from the copy worker's thread pool.
"""

from __future__ import annotations

import base64
import copy
import itertools
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from registry.records import (
    AlreadyExists,
    ConcurrentUpdate,
    CopyJob,
    FileProgress,
    Registration,
    SourceError,
    SourceInfo,
    State,
    StorageUnavailable,
)
from registry.settings import Settings, load_settings

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

    # -- for tests: look and tamper without going through the port --

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

    def send(self, job: CopyJob, delay_seconds: float = 0) -> None:
        if self.failing:
            raise StorageUnavailable("fake queue: unavailable")
        self.sent.append(SentJob(CopyJob.from_json(job.to_json()), delay_seconds))

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


@dataclass
class FakeBlobCopier:
    """Sources by URL; a destination container with staged (uncommitted) and committed blocks."""

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
            source = self.sources.get(url)
            if source is None:
                raise SourceError("the source does not exist (404)", permanent=True)
            return SourceInfo(size=len(source.data), etag=source.etag, content_md5=source.content_md5)

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
            source = self.sources.get(url)
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
            blob = _Blob(list(block_ids), {i: available[i] for i in block_ids}, content_md5)
            self.committed[path] = blob
            self.staged.pop(path, None)  # Put Block List discards the uncommitted blocks
        if self.after_commit is not None:
            self.after_commit(path)
        return len(blob.data)

    # -- for tests --

    def blob(self, path: str) -> bytes | None:
        with self._lock:
            blob = self.committed.get(path)
            return blob.data if blob else None

    def staged_count(self) -> int:
        with self._lock:
            return len(self.stage_calls)
