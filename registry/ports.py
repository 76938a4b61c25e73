"""The ports the services talk to; adapters implement them, tests fake them."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

from registry.domain.events import Event
from registry.domain.jobs import Job
from registry.domain.listing import ModelFilter, ModelSummary
from registry.domain.model import (
    FileProgress,
    Manifest,
    ManifestFile,
    ModelKey,
    Registration,
    SourceInfo,
)
from registry.domain.vocabulary import State
from registry.domain.webhooks import Attempt, Delivery, Subscription


class Registrations(Protocol):
    """The registration records, one per (owner, name, version)."""

    def get(self, owner: str, name: str, version: str) -> Registration | None: ...

    def insert(self, registration: Registration) -> Registration:
        """Add a new registration; AlreadyExists if (owner, name, version) is taken, RecordTooLarge
        if it cannot be stored."""

    def replace(self, registration: Registration) -> Registration:
        """Write it back if unchanged since read (If-Match); ConcurrentUpdate otherwise."""

    def delete(self, registration: Registration, *, unrecord: Sequence[Event] = ()) -> None:
        """Remove the record if unchanged since read (If-Match); ConcurrentUpdate otherwise.
        `unrecord`: pending events of its own to remove with it (a registration undone never
        happened); ConcurrentUpdate if one was delivered already."""

    def in_state(self, state: State, quiet_since: datetime | None = None) -> Iterable[Registration]:
        """Registrations in `state` (every owner), optionally only those whose last progress is
        older than `quiet_since`."""

    def everything(self) -> Iterator[Registration]:
        """Every record (maintenance: re-sealing under a new key)."""

    def count_in_progress(self, owner: str, at_most: int) -> int:
        """How many of the owner's registrations are InProgress, counting no further than `at_most`."""


class FileRows(Protocol):
    """Per-file copy progress, kept per registration id: a new registration of a deleted name and
    version never sees the rows of the old one."""

    def files(self, registration: Registration) -> list[FileProgress]: ...

    def insert_files(self, registration: Registration, files: list[FileProgress]) -> None: ...

    def replace_file(self, registration: Registration, progress: FileProgress) -> FileProgress:
        """Checkpoint one file's progress (If-Match); ConcurrentUpdate if someone else did."""

    def forget_files(self, registration: Registration) -> None:
        """Remove every file row of this registration id."""


class Catalog(Protocol):
    """What lists read: the owner's own registrations, and the public catalog (a projection of
    the records, written after them)."""

    def publish(self, registration: Registration) -> None:
        """List it publicly as the record says (idempotent)."""

    def unpublish(self, registration: Registration) -> None:
        """Take it off the public list (idempotent)."""

    def own_models(
        self, owner: str, after: str, filters: ModelFilter, *, page_size: int = 200
    ) -> Iterator[ModelSummary]:
        """The owner's registrations (not tombstones) in key order after `after` (a sort_key
        without owner), filtered in the query whatever the filters."""

    def public_models(
        self, after: str, filters: ModelFilter, exclude_owner: str, *, page_size: int = 200
    ) -> Iterator[ModelSummary]:
        """Publicly listed models of other owners, in key order after `after` (a full sort_key).
        `page_size`: how many rows the caller expects to read (one request's worth)."""


class Outbox(Protocol):
    """Events recorded with their changes (written by insert, replace and delete in the same
    transaction as the record), kept until the dispatcher delivered them."""

    def pending_events(self, owner: str) -> list[Event]:
        """The owner's undelivered events, oldest first."""

    def delivered(self, owner: str, event: Event) -> None:
        """Remove a delivered event from the outbox (idempotent)."""

    def owners_with_pending_events(self) -> Iterator[str]: ...


class History(Protocol):
    """Every event of a model, kept per owner, name and version (across registrations, and after
    a delete)."""

    def record_history(self, events: Sequence[Event]) -> None:
        """Add events (idempotent: an event recorded again stays one entry)."""

    def history(self, key: ModelKey, limit: int, after: tuple[datetime, str] | None = None) -> list[Event]:
        """At most `limit` events of the model, newest first; with `after` (the time and id of an
        event read before), those that follow it."""


class Manifests(Protocol):
    """The signed manifests of a registration, one per revision of its files."""

    def add_manifest(self, registration: Registration, manifest: Manifest) -> None:
        """Record a revision; AlreadyExists if that revision is recorded already."""

    def manifests(self, registration: Registration) -> list[Manifest]:
        """Every revision, newest first."""

    def forget_manifests(self, registration: Registration) -> None: ...


class RegistrationStore(Registrations, FileRows, Catalog, Outbox, History, Manifests, Protocol):
    """Everything the registry keeps in Table Storage."""


class JobQueue(Protocol):
    def send(self, job: Job, delay_seconds: float = 0) -> None:
        """Enqueue a job (invisible for `delay_seconds`); StorageUnavailable if it could not be."""

    def send_batch(self, jobs: Sequence[Job]) -> None:
        """Enqueue many jobs (bulk producers)."""


class BlobCopier(Protocol):
    """Server-side block copy into the registry's private container (the worker's side)."""

    def source_info(self, url: str) -> SourceInfo:
        """Size and version of a source; SourceError if it cannot be read."""

    def staged_blocks(self, path: str) -> Mapping[str, int]:
        """Uncommitted block id -> size at the destination path."""

    def committed_size(self, path: str, block_ids: list[str]) -> int | None:
        """The blob's size if it is committed with exactly these blocks, else None."""

    def stage_block(self, path: str, block_id: str, url: str, offset: int, length: int) -> None:
        """Put Block From URL; SourceError if the source refuses."""

    def commit(self, path: str, block_ids: list[str], content_md5: str) -> SourceInfo:
        """Put Block List; returns the committed blob's size and ETag."""


class EventSink(Protocol):
    """Somewhere events go (Event Grid, the webhook subscriptions)."""

    def publish(self, events: Sequence[Event]) -> None:
        """Hand over every event, or raise (they are handed over again: at least once)."""


class ModelSigner(Protocol):
    """Signs a model's files in the OpenSSF model-signing format (a Sigstore bundle)."""

    @property
    def key_id(self) -> str: ...

    def sign_files(
        self, files: Sequence[ManifestFile], registry: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """The signature bundle over these (path, size, SHA-256) files; `registry` (name,
        version, owner, revision) is signed along, so the bundle fits no other model or revision."""

    def published_keys(self) -> dict[str, Any]:
        """The public keys clients verify with: the current one first, then earlier ones."""


class ModelFiles(Protocol):
    """Registered files in the private container (the readers' side, and removal)."""

    def stat(self, path: str) -> SourceInfo | None:
        """Size and ETag of a committed blob, or None."""

    def read(self, path: str, max_bytes: int) -> bytes | None: ...

    def read_range(self, path: str, offset: int, length: int, etag: str) -> bytes:
        """Bytes of the blob as it is at `etag`; ConcurrentUpdate if it changed, NotFound if gone."""

    def set_sha256(self, path: str, sha256: str, etag: str) -> str:
        """Record the blob's digest on it (metadata), if it is still at `etag`; returns its new ETag."""

    def delete(self, path: str) -> None:
        """Delete one blob (nothing if it is not there)."""

    def read_url(self, path: str, ttl: timedelta) -> str:
        """A short-lived read-only URL of the file."""

    def delete_prefix(self, prefix: str) -> int:
        """Delete every blob under the prefix, uncommitted ones included; returns how many."""


class WebhookStore(Protocol):
    """Webhook subscriptions (per owner), the index of those that listen to other owners' public
    events (by model name filter), and each subscription's delivery log."""

    def subscription(self, owner: str, subscription_id: str) -> Subscription | None: ...

    def subscriptions(self, owner: str) -> list[Subscription]:
        """The owner's subscriptions, by id."""

    def save_subscription(self, subscription: Subscription, previous: Subscription | None) -> Subscription:
        """Create it (`previous` None: AlreadyExists if the id is taken) or replace `previous`
        (If-Match: ConcurrentUpdate if it changed since read), keeping the listeners' index in line."""

    def delete_subscription(self, subscription: Subscription) -> None:
        """Remove it, its index rows and its delivery log (idempotent)."""

    def listeners(self, model_name: str) -> list[tuple[str, str, tuple[str, ...]]]:
        """(owner, subscription id, event types) of every enabled `visible` subscription whose model
        filter takes this name (or that has none): who may hear of another owner's public model."""

    def all_subscriptions(self) -> Iterator[Subscription]:
        """Every owner's subscriptions (maintenance: re-sealing under a new key)."""

    def stale_logs(self, pruned_before: datetime) -> Iterator[Subscription]:
        """Subscriptions whose delivery log was last pruned before then (or never)."""

    def add_delivery(self, delivery: Delivery) -> bool:
        """Record a new delivery; False if this subscription has one for this event already."""

    def delivery(
        self, owner: str, subscription_id: str, event_time: datetime, event_id: str
    ) -> Delivery | None:
        """The delivery of that event (a point read: its key is the event's time and id)."""

    def find_delivery(self, owner: str, subscription_id: str, event_id: str) -> Delivery | None:
        """The delivery of the event with this id (reads the subscription's log: 30 days at most)."""

    def save_delivery(self, delivery: Delivery) -> Delivery:
        """Write it back if unchanged since read (If-Match); ConcurrentUpdate otherwise."""

    def deliveries(
        self, owner: str, subscription_id: str, limit: int, after: tuple[datetime, str] | None = None
    ) -> list[Delivery]:
        """At most `limit` deliveries, newest event first; with `after` (an event's time and id
        read before), those that follow it."""

    def prune_deliveries(self, owner: str, subscription_id: str, before: datetime) -> int:
        """Remove the deliveries of events older than `before`; returns how many."""


class WebhookClient(Protocol):
    """Sends one signed POST to a subscriber."""

    def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> Attempt:
        """What the subscriber answered, or why nothing was sent or heard (never raises for the
        subscriber's faults: refused addresses, timeouts, connection errors are Attempts too)."""
