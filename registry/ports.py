"""The ports the services talk to; adapters implement them, tests fake them."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

from registry.records import FileProgress, Job, ModelFilter, ModelSummary, Registration, SourceInfo


class RegistrationStore(Protocol):
    def get(self, owner: str, name: str, version: str) -> Registration | None: ...

    def insert(self, registration: Registration) -> Registration:
        """Add a new registration; AlreadyExists if (owner, name, version) is taken."""

    def replace(self, registration: Registration) -> Registration:
        """Write it back if unchanged since read (If-Match); ConcurrentUpdate otherwise."""

    def delete(self, registration: Registration) -> None: ...

    def files(self, registration: Registration) -> list[FileProgress]: ...

    def insert_files(self, registration: Registration, files: list[FileProgress]) -> None: ...

    def replace_file(self, registration: Registration, progress: FileProgress) -> FileProgress:
        """Checkpoint one file's progress (If-Match); ConcurrentUpdate if someone else did."""

    def stale_in_progress(self, before: datetime) -> Iterable[Registration]:
        """InProgress registrations whose last progress is older than `before`."""

    def publish(self, registration: Registration) -> None:
        """List it publicly (idempotent)."""

    def unpublish(self, registration: Registration) -> None:
        """Take it off the public list; NotFound if it was not there."""

    def own_models(self, owner: str, after: str, filters: ModelFilter) -> Iterator[ModelSummary]:
        """The owner's registrations in key order after `after` (a sort_key without owner)."""

    def public_models(self, after: str, filters: ModelFilter, exclude_owner: str) -> Iterator[ModelSummary]:
        """Publicly listed models of other owners, in key order after `after` (a full sort_key)."""

    def record_change(self, registration: Registration, change: dict[str, Any]) -> None: ...

    def changes(self, registration: Registration) -> list[dict[str, Any]]: ...

    def forget(self, registration: Registration) -> None:
        """Delete the registration, its file progress, its listing and its change log."""


class JobQueue(Protocol):
    def send(self, job: Job, delay_seconds: float = 0) -> None:
        """Enqueue a job (invisible for `delay_seconds`); StorageUnavailable if it could not be."""

    def send_batch(self, jobs: Sequence[Job]) -> None:
        """Enqueue many jobs (bulk producers)."""


class BlobCopier(Protocol):
    """Server-side block copy into the registry's private container."""

    def source_info(self, url: str) -> SourceInfo:
        """Size and version of a source; SourceError if it cannot be read."""

    def staged_blocks(self, path: str) -> Mapping[str, int]:
        """Uncommitted block id -> size at the destination path."""

    def committed_size(self, path: str, block_ids: list[str]) -> int | None:
        """The blob's size if it is committed with exactly these blocks, else None."""

    def stage_block(self, path: str, block_id: str, url: str, offset: int, length: int) -> None:
        """Put Block From URL; SourceError if the source refuses."""

    def commit(self, path: str, block_ids: list[str], content_md5: str) -> int:
        """Put Block List; returns the committed blob's size."""

    def delete_prefix(self, prefix: str) -> int:
        """Delete every blob under the prefix; returns how many."""


class ModelFiles(Protocol):
    """Registered files in the private container, for readers."""

    def exists(self, path: str) -> bool: ...

    def read(self, path: str, max_bytes: int) -> bytes | None: ...

    def read_url(self, path: str, ttl: timedelta) -> str:
        """A short-lived read-only URL of the file."""

    def delete_prefix(self, prefix: str) -> int: ...
