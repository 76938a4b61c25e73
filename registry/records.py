"""Plain data that moves between the services and the adapters."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any


class State(StrEnum):
    IN_PROGRESS = "InProgress"
    FINISHED = "Finished"
    FAILED = "Failed"


class FileState(StrEnum):
    PENDING = "Pending"
    COPYING = "Copying"
    FINISHED = "Finished"
    FAILED = "Failed"


def utcnow() -> datetime:
    return datetime.now(UTC)


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# The registration id of the record an invalid bulk registration leaves: Failed, no files, no job;
# a valid registration of the same name and version replaces it.
INVALID_REGISTRATION = "invalid"


@dataclass
class Registration:
    """One model registration, identified by (owner, name, version)."""

    owner: str
    name: str
    version: str
    owner_name: str
    registration_id: str
    state: State
    message: str
    private: bool
    model_type: str
    description: str
    body_digest: str
    # The request without its secrets (sources are shown without their query strings).
    document: dict[str, Any]
    file_names: list[str]
    # The sources (with their SAS) and other write-only values, encrypted; empty once finished.
    sealed: bytes
    created_at: datetime
    updated_at: datetime
    last_progress_at: datetime
    picked_up: bool = False
    lease_id: str = ""
    lease_until: datetime = EPOCH
    attempt: int = 1
    takeovers: int = 0
    slices: int = 0  # continuations sent so far: numbers each one's message id
    refresh_files: list[str] = field(default_factory=list)  # updated files the worker copies anew
    last_error: str = ""
    # Set once the model's files were all copied: from then on a public model is listed.
    finished_once: bool = False
    parent: dict[str, str] | None = None  # the model this one was cloned from
    last_change: dict[str, Any] | None = None  # who changed what, when (visibility, updates)
    etag: str | None = field(default=None, compare=False)

    @property
    def key(self) -> str:
        return f"{self.owner}:{self.name}:{self.version}"

    @property
    def listed_publicly(self) -> bool:
        return not self.private and self.finished_once

    def visible_to(self, caller_id: str) -> bool:
        """A private model exists only for its owner; a public one once its files are there."""
        return caller_id == self.owner or self.listed_publicly

    @property
    def trainable(self) -> bool:
        return "training_properties" in self.document.get("model_config", {})

    def blob_path(self, target: str) -> str:
        return f"{self.owner}/{self.name}/{self.version}/{target}"


@dataclass
class FileProgress:
    """The copy of one file of a registration, checkpointed as it goes."""

    index: int
    target: str
    state: FileState = FileState.PENDING
    size: int | None = None
    bytes_copied: int = 0
    source_etag: str = ""
    block_size: int = 0
    content_md5: str = ""
    error: str = ""
    etag: str | None = field(default=None, compare=False)


JOB_SCHEMA = 1


@dataclass(frozen=True)
class CopyJob:
    """The message that asks a worker to (continue to) copy a registration's files."""

    owner: str
    name: str
    version: str
    registration_id: str
    # Why it was sent and which of its kind it is: together they make the message id.
    purpose: str = "start"  # start | continue | retry | replay | restart | requeue | update
    sequence: int = 0
    attempt: int = 0  # how often this job was put back after a passing failure (with backoff)

    kind = "copy"

    @property
    def message_id(self) -> str:
        """Deterministic: a resend of the same message is dropped by duplicate detection."""
        base = f"copy:{self.registration_id}:{self.purpose}:{self.sequence}"
        return f"{base}:a{self.attempt}" if self.attempt else base

    def to_json(self) -> str:
        return json.dumps(
            {
                "schema": JOB_SCHEMA,
                "kind": self.kind,
                "owner": self.owner,
                "name": self.name,
                "version": self.version,
                "registration_id": self.registration_id,
                "purpose": self.purpose,
                "sequence": self.sequence,
                "attempt": self.attempt,
            }
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> CopyJob:
        job = parse_job(text)
        if not isinstance(job, CopyJob):
            raise ValueError("not a copy job")
        return job


@dataclass(frozen=True)
class RegisterJob:
    """A registration put straight on the job queue by a bulk producer: the owner and the same
    body as the PUT. The worker validates it exactly as the HTTP function does."""

    owner: str
    name: str
    version: str
    body: Any
    owner_name: str = ""

    kind = "register"

    @property
    def message_id(self) -> str:
        # Hashed: Service Bus takes at most 128 characters, and identifiers may be 128 each.
        what = json.dumps([self.owner, self.name, self.version, self.body], sort_keys=True)
        return f"register:{hashlib.sha256(what.encode()).hexdigest()}"

    def to_json(self) -> str:
        return json.dumps(
            {
                "schema": JOB_SCHEMA,
                "kind": self.kind,
                "owner": self.owner,
                "owner_name": self.owner_name or self.owner,
                "name": self.name,
                "version": self.version,
                "body": self.body,
            }
        )


Job = CopyJob | RegisterJob


def parse_job(text: str | bytes) -> Job:
    """A job message's body; ValueError if it is not one this worker understands."""
    data = json.loads(text)
    if not isinstance(data, dict) or data.get("schema") != JOB_SCHEMA:
        raise ValueError(f"not a job message of schema {JOB_SCHEMA}")
    try:
        if data.get("kind") == "copy":
            return CopyJob(
                owner=str(data["owner"]),
                name=str(data["name"]),
                version=str(data["version"]),
                registration_id=str(data["registration_id"]),
                purpose=str(data.get("purpose", "start")),
                sequence=int(data.get("sequence", 0)),
                attempt=int(data.get("attempt", 0)),
            )
        if data.get("kind") == "register":
            return RegisterJob(
                owner=str(data["owner"]),
                name=str(data["name"]),
                version=str(data["version"]),
                body=data["body"],
                owner_name=str(data.get("owner_name") or data["owner"]),
            )
    except KeyError as missing:
        raise ValueError(f"job message without {missing}") from None
    raise ValueError(f"unknown job kind {data.get('kind')!r}")


@dataclass(frozen=True)
class SourceInfo:
    size: int
    etag: str
    content_md5: str = ""


DATA_TYPES = ("SOURCE_CODE", "NATURAL_LANGUAGE", "CLASS_LABEL", "OTHER")


@dataclass(frozen=True)
class ModelFilter:
    """List filters; None means "any"."""

    name: str | None = None
    version: str | None = None
    owner: str | None = None
    type: str | None = None
    trainable: bool | None = None
    input_type: str | None = None
    output_type: str | None = None
    language: str | None = None


@dataclass(frozen=True)
class ModelSummary:
    """One model in a list: what listing shows, read without the model's full document."""

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
    parent_model: dict[str, str] | None
    created_at: datetime
    updated_at: datetime

    @property
    def sort_key(self) -> str:
        return sort_key(self.name, self.version, self.owner)


def sort_key(name: str, version: str, owner: str = "") -> str:
    """Table keys that sort as the (name, version, owner) tuple does: '!' sorts below every
    character a name, version or owner may hold."""
    return f"{name}!{version}!{owner}" if owner else f"{name}!{version}"


class NotFound(Exception):
    pass


class AlreadyExists(Exception):
    pass


class ConcurrentUpdate(Exception):
    """Someone else changed the record since we read it (an ETag condition failed)."""


class StorageUnavailable(Exception):
    """A storage call failed for a reason that may pass: retry later."""


class SourceError(Exception):
    """A source file could not be read. `permanent` errors fail the registration."""

    def __init__(self, reason: str, *, permanent: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent
