"""A registration and its lifecycle.

accept → (lease, checkpoint)* → finish | fail; a failed registration restarts on an identical
replay; a finished or failed one takes new files (and copies again); any of them can be deleted,
which leaves a tombstone (DELETING) until everything stored is removed. The methods here are the
only place that moves `state`, `message` and the lease: services call them and store the result.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from registry.domain.errors import IllegalTransition, LeaseHeld
from registry.domain.events import Event, EventType
from registry.domain.vocabulary import FileState, State


def utcnow() -> datetime:
    return datetime.now(UTC)


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
DELETED = "Deleted"  # the state a deleted model's last event tells (no record keeps it)
# Workers that may die holding the lease, in a row, before the copy is given up.
MAX_TAKEOVERS = 5
# A status message stays readable (and well inside a Table property's 64 KiB).
MAX_MESSAGE_CHARS = 4000
# The registration id of the record an invalid bulk registration leaves: Failed, no files, no job;
# a valid registration of the same name and version replaces it.
INVALID_REGISTRATION = "invalid"

_ALLOWED: dict[State, frozenset[State]] = {
    State.IN_PROGRESS: frozenset({State.FINISHED, State.FAILED, State.DELETING}),
    State.FINISHED: frozenset({State.IN_PROGRESS, State.DELETING}),
    State.FAILED: frozenset({State.IN_PROGRESS, State.DELETING}),
    State.DELETING: frozenset(),
}
# What a worker owns in a record; the owner's edits (visibility, description, metainfo) land on
# other fields, so a PATCH during a copy merges with the worker's checkpoints instead of stopping it.
_WORKER_FIELDS = (
    "state", "message", "last_progress_at", "lease_id", "lease_until", "picked_up", "takeovers",
    "last_error", "sealed", "finished_once", "slices", "refresh_files", "revision", "manifest_digest",
)  # fmt: skip


def _clip(message: str) -> str:
    return message if len(message) <= MAX_MESSAGE_CHARS else message[: MAX_MESSAGE_CHARS - 1] + "…"


@dataclass(frozen=True)
class ModelKey:
    """What identifies a model: its owner (a principal id), name and version."""

    owner: str
    name: str
    version: str


@dataclass
class Registration:
    """One model registration, identified by (owner, name, version); `registration_id` tells one
    registration of that name and version from an earlier, deleted one."""

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
    # The sources (with their SAS) and other write-only values, encrypted; sources dropped once finished.
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
    revision: int = 0  # manifests signed so far: the next files' change makes revision + 1
    refresh_files: list[str] = field(default_factory=list)  # updated files the worker copies anew
    last_error: str = ""
    # Set once the model's files were all copied: from then on a public model is listed.
    finished_once: bool = False
    parent: dict[str, str] | None = None  # the model this one was cloned from
    last_change: dict[str, Any] | None = None  # who changed what, when
    manifest_digest: str = ""  # of the latest manifest revision
    etag: str | None = field(default=None, compare=False)
    # What the store remembers of what it last wrote for this record (its own business).
    storage_memo: Any = field(default=None, compare=False, repr=False)
    # What happened to it since it was read: the store writes these with the record, in the same
    # transaction (the outbox), and forgets them once written.
    events: list[Event] = field(default_factory=list, compare=False, repr=False)

    # -- creation --

    @classmethod
    def accept(
        cls, key: ModelKey, *, owner_name: str, document: dict[str, Any], now: datetime
    ) -> Registration:
        """A new registration of the (secret-free) document, InProgress until its files are
        copied; its digest and sealed secrets are the registering service's to add."""
        config = document.get("model_config", {})
        return cls(
            owner=key.owner,
            name=key.name,
            version=key.version,
            owner_name=owner_name,
            registration_id=uuid.uuid4().hex,
            state=State.IN_PROGRESS,
            message="Registration accepted; copying files",
            private=bool(config.get("private", True)),
            model_type=str(config.get("type", "")),
            description=str(config.get("description", "")),
            body_digest="",
            document=document,
            file_names=sorted(document.get("model_files", {})),
            sealed=b"",
            created_at=now,
            updated_at=now,
            last_progress_at=now,
        )

    @classmethod
    def invalid(cls, key: ModelKey, *, owner_name: str, reason: str, now: datetime) -> Registration:
        """What an invalid bulk registration leaves for its owner to read: Failed, with the reason."""
        invalid = cls(
            owner=key.owner,
            name=key.name,
            version=key.version,
            owner_name=owner_name,
            registration_id=INVALID_REGISTRATION,
            state=State.FAILED,
            message=_clip(f"Invalid registration: {reason}"),
            private=True,
            model_type="",
            description="",
            body_digest="",
            document={},
            file_names=[],
            sealed=b"",
            created_at=now,
            updated_at=now,
            last_progress_at=now,
        )
        invalid.record(EventType.FAILED, now, {"by": key.owner})
        return invalid

    # -- what it is --

    @property
    def key(self) -> str:
        return f"{self.owner}:{self.name}:{self.version}"

    @property
    def model_key(self) -> ModelKey:
        return ModelKey(self.owner, self.name, self.version)

    @property
    def gone(self) -> bool:
        """Deleted, or being deleted: the API treats it as a model that does not exist."""
        return self.state is State.DELETING

    @property
    def is_placeholder(self) -> bool:
        return self.registration_id == INVALID_REGISTRATION

    @property
    def listed_publicly(self) -> bool:
        return not self.private and self.finished_once and not self.gone

    def visible_to(self, caller_id: str) -> bool:
        """A private model exists only for its owner; a public one once its files are there."""
        return not self.gone and (caller_id == self.owner or self.listed_publicly)

    @property
    def trainable(self) -> bool:
        return "training_properties" in self.document.get("model_config", {})

    @property
    def metainfo(self) -> dict[str, Any]:
        meta: dict[str, Any] = self.document.get("model_metainfo", {})
        return meta

    @property
    def languages(self) -> tuple[str, ...]:
        """Every input and output language, lower-cased, each once, sorted."""
        meta = self.metainfo
        found = {x.lower() for side in ("input", "output") for x in meta.get(f"{side}_languages") or ()}
        return tuple(sorted(found))

    @property
    def blob_prefix(self) -> str:
        # The registration id keeps a deleted registration's blobs apart from a new one's of the
        # same name and version: a late write of a dead worker can never land in the new one.
        return f"{self.owner}/{self.name}/{self.version}/{self.registration_id}/"

    def blob_path(self, target: str, generation: int = 0) -> str:
        """Where a generation of a file lives (see FileProgress)."""
        return f"{self.blob_prefix}{generation}/{target}"

    @property
    def expected_digests(self) -> dict[str, str]:
        """The SHA-256 the owner gave for some files (target -> hex)."""
        expected: dict[str, str] = self.document.get("expected_sha256", {})
        return expected

    @property
    def given_up(self) -> bool:
        """Its workers died holding the lease too often: the copy is given up."""
        return self.takeovers >= MAX_TAKEOVERS

    def lease_live(self, now: datetime) -> bool:
        return bool(self.lease_id) and self.lease_until > now

    # -- the lifecycle --

    def _move(self, to: State, message: str, now: datetime) -> None:
        if to is not self.state and to not in _ALLOWED[self.state]:
            raise IllegalTransition(f"a {self.state.value} registration cannot become {to.value}")
        self.state = to
        self.message = _clip(message)
        self.updated_at = now

    def take_lease(self, now: datetime, seconds: float) -> bool:
        """Take the copy lease; True if it is taken over from a worker that died holding it.

        Raises LeaseHeld while another worker's lease runs, IllegalTransition unless InProgress.
        """
        if self.state is not State.IN_PROGRESS:
            raise IllegalTransition(f"a {self.state.value} registration has nothing to copy")
        if self.lease_live(now):
            raise LeaseHeld(self.lease_until)
        taken_over = bool(self.lease_id)
        if taken_over:
            self.takeovers += 1
        self.lease_id = uuid.uuid4().hex
        self.lease_until = now + timedelta(seconds=seconds)
        self.picked_up = True
        self.last_progress_at = now
        return taken_over

    def renew_lease(self, now: datetime, seconds: float) -> None:
        """A checkpoint: progress was made, and the lease runs on."""
        self.last_progress_at = now
        self.lease_until = now + timedelta(seconds=seconds)

    def release_lease(self, now: datetime, *, error: str = "") -> None:
        self.lease_id = ""
        self.lease_until = EPOCH
        self.takeovers = 0
        self.last_progress_at = now
        if error:
            self.last_error = _clip(error)

    def record(self, kind: EventType, now: datetime, data: dict[str, Any] | None = None) -> Event:
        """Note an event of this change (written with the record; see `events`)."""
        event = Event(
            type=kind,
            owner=self.owner,
            name=self.name,
            version=self.version,
            time=now,
            change=f"{self.registration_id}:{now.isoformat()}",
            public=self.listed_publicly,
            data={"state": self.state.value, "message": self.message, **(data or {})},
        )
        self.events.append(event)
        return event

    def finish(self, now: datetime, message: str) -> None:
        self._move(State.FINISHED, message, now)
        self.finished_once = True
        self.refresh_files = []
        self.release_lease(now)
        self.record(
            EventType.FINISHED, now, {"revision": self.revision, "manifest_digest": self.manifest_digest}
        )

    def fail(self, now: datetime, message: str) -> None:
        self._move(State.FAILED, message, now)
        self.release_lease(now)
        self.record(EventType.FAILED, now)

    def restart(self, now: datetime, message: str) -> None:
        """A Failed registration tries again (its finished files are kept)."""
        if self.state is not State.FAILED:
            raise IllegalTransition(f"only a Failed registration restarts, not a {self.state.value} one")
        self._move(State.IN_PROGRESS, message, now)
        self.attempt += 1
        self.last_error = ""
        self.picked_up = False
        self.last_progress_at = now
        self.record(EventType.REGISTERED, now, {"by": self.owner, "attempt": self.attempt})

    def replace_files(self, now: datetime, targets: list[str], by: str) -> None:
        """New or replacing files: copied anew while the current ones stay served."""
        if self.state is State.IN_PROGRESS:
            raise IllegalTransition("the model's files are being copied; update its files once that is done")
        count = len(targets)
        self._move(State.IN_PROGRESS, f"Updating {count} file{'s' * (count != 1)}", now)
        for target in targets:
            if target not in self.file_names:
                self.file_names.append(target)  # appended: file rows are numbered by position
        self.refresh_files = sorted({*self.refresh_files, *targets})
        self.picked_up = False
        self.last_progress_at = now
        self.record(EventType.FILES_REPLACED, now, {"files": sorted(targets), "by": by})

    def mark_deleting(self, now: datetime) -> None:
        """Leave a tombstone: whatever worker holds the lease loses it at its next checkpoint."""
        was_public = self.listed_publicly
        self._move(State.DELETING, "Being deleted", now)
        self.lease_id = ""
        self.lease_until = EPOCH
        self.refresh_files = []
        event = self.record(EventType.DELETED, now, {"state": DELETED, "message": "Deleted"})
        self.events[-1] = replace(event, public=was_public)  # those who could see it hear it went

    def touch(self, now: datetime) -> None:
        """Mark it as looked after (a replay or the sweep re-enqueued its job)."""
        self.last_progress_at = now

    def rebase(self, fresh: Registration) -> None:
        """Keep this worker's lifecycle fields, take the rest (the owner's edits) from `fresh`."""
        for name in _WORKER_FIELDS:
            setattr(fresh, name, getattr(self, name))
        fresh.updated_at = max(fresh.updated_at, self.updated_at)
        events = self.events
        vars(self).update(vars(fresh))
        self.events = events  # what this worker did still has to be written with its fields


@dataclass
class FileProgress:
    """One file of a registration: its copy and its hashing, checkpointed as they go.

    Each copy of a file (its first, a restart after a failure, a replacement) writes a new
    generation, a blob of its own: the generation served stays served until the new one is copied
    and its digest verified.
    """

    index: int
    target: str
    state: FileState = FileState.PENDING
    size: int | None = None
    bytes_copied: int = 0
    source_etag: str = ""
    block_size: int = 0
    content_md5: str = ""
    error: str = ""
    generation: int = 0  # the blob being copied and hashed
    blob_etag: str = ""  # that blob's ETag once committed (and once its digest is on it)
    bytes_hashed: int = 0
    hash_state: str = ""  # where hashing stopped (Sha256.state())
    expected_sha256: str = ""  # what the owner said the file's digest is
    served_generation: int = -1  # the blob readers get (-1: none yet)
    served_size: int = -1
    served_sha256: str = ""
    # When the generation served before was replaced: its blob is removed once the read links
    # handed out for it (valid for minutes) have expired.
    retired_at: datetime | None = None
    etag: str | None = field(default=None, compare=False)

    @property
    def served(self) -> bool:
        return self.served_generation >= 0

    def reset(self, expected_sha256: str = "") -> None:
        """Copy it anew, into a new generation (a restart after a failure, or a replacement)."""
        self.state, self.error, self.source_etag = FileState.PENDING, "", ""
        self.bytes_copied, self.size, self.block_size, self.content_md5 = 0, None, 0, ""
        self.generation = max(self.generation, self.served_generation) + 1
        self.blob_etag, self.bytes_hashed, self.hash_state = "", 0, ""
        self.expected_sha256 = expected_sha256

    def committed(self, blob_etag: str) -> None:
        """Its bytes are in: hash the registry's copy next."""
        self.state, self.blob_etag = FileState.HASHING, blob_etag
        self.bytes_copied = self.size or 0
        self.bytes_hashed, self.hash_state = 0, ""

    def verified(self, sha256: str, blob_etag: str, now: datetime) -> None:
        """Hashed (and checked against what the owner expected): this generation is served."""
        if self.served:
            self.retired_at = now
        self.state, self.blob_etag, self.hash_state = FileState.FINISHED, blob_etag, ""
        self.bytes_hashed = self.size or 0
        self.served_generation, self.served_size, self.served_sha256 = self.generation, self.size or 0, sha256

    def fail(self, reason: str) -> None:
        self.state, self.error = FileState.FAILED, _clip(reason)


@dataclass(frozen=True)
class SourceInfo:
    """What the worker learns of a source before copying it."""

    size: int
    etag: str
    content_md5: str = ""


@dataclass(frozen=True)
class ManifestFile:
    path: str
    size: int
    sha256: str


@dataclass(frozen=True)
class Manifest:
    """One revision of a model version's files, as the registry verified them, signed.

    A new revision is made each time the files change (the first copy, then each replacement):
    earlier revisions stay, so a consumer who pinned one can always tell the version changed.
    """

    name: str
    version: str
    owner: str
    revision: int
    files: tuple[ManifestFile, ...]
    parent: dict[str, str] | None
    created_at: datetime
    finished_at: datetime
    by: str  # who made the change that led to it
    digest: str = ""  # "sha256:<hex>" of the canonical body (RFC 8785)
    key_id: str = ""
    signature: dict[str, Any] | None = None  # the OpenSSF model-signing bundle

    def body(self) -> dict[str, Any]:
        """What the digest covers: everything but the digest and the signature."""
        body: dict[str, Any] = {
            "name": self.name,
            "version": self.version,
            "owner": self.owner,
            "revision": self.revision,
            "files": [{"path": f.path, "size": f.size, "sha256": f.sha256} for f in self.files],
            "created_at": self.created_at.isoformat(),
            "finished_at": self.finished_at.isoformat(),
        }
        if self.parent:
            body["parent"] = dict(self.parent)
        return body
