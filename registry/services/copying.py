"""The copy worker: server-side, block by block, resumable, within a time budget per invocation.

One invocation (a slice) takes the registration's lease, pins every file's source (version and
size) and checks the quotas before a byte is copied, copies until its budget is spent, then
checkpoints and enqueues a continuation. Blocks already staged at the destination are found
again from its uncommitted block list, so a crash loses at most the blocks that were in flight.
Every write of progress is conditioned on the ETag read before it, and every checkpoint renews
the (short) lease: a worker whose lease was taken over stops at its next checkpoint, and a dead
worker's lease lapses within seconds.

File rows, block ids and blob paths all belong to one registration id: nothing a deleted
registration left behind is ever taken for progress of a new one.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import logging
import math
from collections import deque
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from typing import Any

from registry.digests import Sha256
from registry.domain.errors import (
    ConcurrentUpdate,
    IllegalTransition,
    LeaseHeld,
    NotFound,
    SourceError,
    StorageUnavailable,
)
from registry.domain.jobs import CopyJob
from registry.domain.model import FileProgress, Registration, SourceInfo
from registry.domain.vocabulary import FileState
from registry.services import events, lifecycle, manifests
from registry.services.dependencies import Dependencies
from registry.services.models import DOWNLOAD_TTL
from registry.services.registration import Unavailable, job_for, seal, unseal

log = logging.getLogger(__name__)

MAX_BLOCKS = 50_000  # per blob, a Blob Storage limit
MIB = 1024 * 1024
HASH_CHUNK_BYTES = 8 * MIB  # read at a time when hashing: memory stays bounded whatever the size
# Hashing state is saved at least this often: a crash re-hashes at most this much of a file (all
# of it where libcrypto's SHA-256 state cannot be saved: see registry/digests.py).
HASH_CHECKPOINT_BYTES = 64 * MIB
PARENT_CHANGED = "the parent's file changed or was removed since the clone was accepted"


class Outcome(StrEnum):
    IGNORED = "ignored"  # stale or unknown job, or the registration already ended
    BUSY = "busy"  # another worker holds the lease: this message is a duplicate
    CONTINUED = "continued"  # the budget ran out; a continuation was enqueued
    FINISHED = "finished"
    FAILED = "failed"
    LOST = "lost"  # another worker took over mid-slice, or the model was deleted
    RETIRED = "retired"  # replaced files whose read links expired were removed


@dataclass(frozen=True)
class CopyPolicy:
    block_size: int
    concurrency: int
    time_budget_seconds: float
    lease_seconds: float

    @classmethod
    def of(cls, deps: Dependencies) -> CopyPolicy:
        s = deps.settings
        return cls(s.copy_block_size, s.copy_concurrency, s.copy_time_budget_seconds, s.copy_lease_seconds)

    @property
    def checkpoint_seconds(self) -> float:
        # Often enough that the lease never lapses while its holder is alive.
        return min(5.0, self.lease_seconds / 3)

    @property
    def source_ttl(self) -> timedelta:
        """How long a read URL of the registry's own blob (a clone's source) stays valid: one slice."""
        return timedelta(seconds=self.time_budget_seconds + 300)


def block_size_for(size: int, preferred: int) -> int:
    """The preferred size, grown (in whole MiB) only when the file would need too many blocks."""
    needed = math.ceil(size / MAX_BLOCKS) if size else preferred
    return max(preferred, math.ceil(needed / MIB) * MIB)


def block_ids(registration_id: str, source_etag: str, block_size: int, size: int) -> list[str]:
    """Deterministic ids, tied to the registration, the source version and the block size, so that
    no block staged for another registration, version or size is ever mistaken for one of these."""
    tag = hashlib.sha256(f"{registration_id}|{source_etag}|{block_size}".encode()).hexdigest()[:12]
    count = math.ceil(size / block_size)
    return [base64.b64encode(f"{tag}-{i:06d}".encode()).decode() for i in range(count)]


class _LeaseLost(Exception):
    pass


class _Failed(Exception):
    def __init__(self, progress: FileProgress, reason: str) -> None:
        super().__init__(f"copying {progress.target!r} failed: {reason}")
        self.progress = progress
        self.reason = reason


# -- where each file comes from -------------------------------------------------------------------


@dataclass
class Sources:
    """A registration's sources: URLs it was given, and (for a clone) files pinned in its parent,
    read through short-lived URLs minted here, after checking the parent is still visible."""

    deps: Dependencies
    registration: Registration
    policy: CopyPolicy
    urls: dict[str, str]
    inherited: dict[str, dict[str, Any]]
    parent_registration_id: str
    _parent_ok: bool | None = None

    @classmethod
    def of(cls, deps: Dependencies, registration: Registration, policy: CopyPolicy) -> Sources:
        secrets = unseal(deps, registration)
        return cls(
            deps,
            registration,
            policy,
            dict(secrets.get("model_files", {})),
            dict(secrets.get("inherited") or {}),
            str(secrets.get("parent_registration_id", "")),
        )

    def pinned_etag(self, target: str) -> str:
        return str(self.inherited[target]["etag"]) if target in self.inherited else ""

    def inherited_sha256(self, progress: FileProgress) -> str:
        """The parent's digest of an inherited file, when the pinned blob is the one it hashed
        (the copy was made from that very blob version)."""
        pin = self.inherited.get(progress.target)
        if pin is None or progress.source_etag != pin["etag"]:
            return ""
        return str(pin.get("sha256", ""))

    def url(self, progress: FileProgress) -> str:
        if progress.target in self.inherited:
            if not self._parent_visible():
                parent = self.registration.parent or {}
                raise _Failed(
                    progress,
                    f"the parent model {parent.get('name')} {parent.get('version')} is no longer "
                    "visible to you, or was registered anew",
                )
            return self.deps.files.read_url(self.inherited[progress.target]["path"], self.policy.source_ttl)
        url = self.urls.get(progress.target)
        if url is None:
            raise _Failed(progress, "its source is no longer known; register or update the file again")
        return url

    def _parent_visible(self) -> bool:
        if self._parent_ok is None:
            ref = self.registration.parent or {}
            parent = self.deps.store.get(ref.get("owner", ""), ref.get("name", ""), ref.get("version", ""))
            self._parent_ok = (
                parent is not None
                and parent.registration_id == self.parent_registration_id
                and parent.visible_to(self.registration.owner)
            )
        return self._parent_ok


# -- one slice of work ------------------------------------------------------------------------------


@dataclass
class _FileCopy:
    progress: FileProgress
    url: str
    path: str
    ids: list[str] = field(default_factory=list)
    pending: deque[int] = field(default_factory=deque)
    in_flight: int = 0
    dirty: bool = False

    def block_range(self, index: int) -> tuple[int, int]:
        size = self.progress.size or 0
        offset = index * self.progress.block_size
        return offset, min(self.progress.block_size, size - offset)

    @property
    def staged_all(self) -> bool:
        return not self.pending and self.in_flight == 0


@dataclass
class Slice:
    """One invocation's share of the work on one registration (the lease is held)."""

    deps: Dependencies
    registration: Registration
    sources: Sources
    policy: CopyPolicy
    clock: Callable[[], float]
    lease: str
    deadline: float = 0.0
    next_checkpoint: float = 0.0
    progressed: bool = False
    retiring: bool = False  # a served generation was replaced: remove it once its links expired
    todo: deque[FileProgress] = field(default_factory=deque)
    active: list[_FileCopy] = field(default_factory=list)
    futures: dict[Future[None], tuple[_FileCopy, int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.deadline = self.clock() + self.policy.time_budget_seconds
        self.next_checkpoint = self.clock() + self.policy.checkpoint_seconds

    def _time_is_up(self) -> bool:
        # Every slice does some work, however small its budget, so that it always progresses.
        return self.progressed and self.clock() >= self.deadline

    # -- before any copying: pin every source and check the quotas --

    def measure(self, files: list[FileProgress]) -> bool:
        """Pin the version and size of every file not yet pinned; True once all are."""
        for progress in files:
            if progress.state in (FileState.FINISHED, FileState.HASHING) or progress.source_etag:
                continue
            if self._time_is_up():
                return False
            info = self._source_info(progress, self.sources.url(progress))
            progress.source_etag, progress.size, progress.content_md5 = info.etag, info.size, info.content_md5
            progress.block_size = block_size_for(info.size, self.policy.block_size)
            progress.state = FileState.COPYING
            self._save(progress)
            self.progressed = True
        return True

    def check_quotas(self, files: list[FileProgress]) -> None:
        quotas, total = self.deps.settings.quotas, 0
        for progress in files:
            size = progress.size if progress.size is not None else max(progress.served_size, 0)
            if size > quotas.max_file_bytes:
                raise _Failed(
                    progress,
                    f"it is {size:,} bytes, over the limit of {quotas.max_file_bytes:,} bytes a file",
                )
            total += size
            if total > quotas.max_model_bytes:
                raise _Failed(
                    progress,
                    f"with it the model's files add up to {total:,} bytes, over the limit of "
                    f"{quotas.max_model_bytes:,} bytes a model",
                )

    def _source_info(self, progress: FileProgress, url: str) -> SourceInfo:
        inherited = progress.target in self.sources.inherited
        try:
            info = self.deps.copier.source_info(url)
        except SourceError as error:
            if error.permanent:
                reason = PARENT_CHANGED if inherited and "404" in error.reason else error.reason
                raise _Failed(progress, reason) from None
            raise
        pinned = progress.source_etag or self.sources.pinned_etag(progress.target)
        if pinned and info.etag != pinned:
            raise _Failed(
                progress, PARENT_CHANGED if inherited else "the source changed since the copy started"
            )
        if progress.size is not None and info.size != progress.size:
            raise _Failed(progress, "the source changed size since the copy started")
        return info

    # -- the block pump --

    def run(self, files: list[FileProgress]) -> bool:
        """Copy until done (True) or out of time (False). Raises _Failed, _LeaseLost or errors."""
        self.todo = deque(p for p in files if p.state in (FileState.PENDING, FileState.COPYING))
        with ThreadPoolExecutor(self.policy.concurrency, thread_name_prefix="copy") as pool:
            try:
                self._fill(pool)
                while self.futures:
                    done, _ = wait(self.futures, timeout=1.0, return_when=FIRST_COMPLETED)
                    self._collect(done)
                    self._checkpoint_if_due()
                    self._fill(pool)
            except BaseException:
                for future in self.futures:
                    future.cancel()
                raise
        return not self.todo and not self.active

    def _fill(self, pool: ThreadPoolExecutor) -> None:
        while len(self.futures) < self.policy.concurrency and not self._time_is_up():
            copy = self._next_with_blocks()
            if copy is None:
                return
            index = copy.pending.popleft()
            offset, length = copy.block_range(index)
            future = pool.submit(
                self.deps.copier.stage_block, copy.path, copy.ids[index], copy.url, offset, length
            )
            self.futures[future] = (copy, index)
            copy.in_flight += 1
            self.progressed = True

    def _next_with_blocks(self) -> _FileCopy | None:
        copy = next((c for c in self.active if c.pending), None)
        while copy is None and self.todo and not self._time_is_up():
            copy = self._start(self.todo.popleft())
        return copy

    def _start(self, progress: FileProgress) -> _FileCopy | None:
        """Prepare a file; None if nothing is left to stage for it (it is then completed)."""
        copy = self.prepare(progress)
        if copy.progress.state is FileState.HASHING:
            return None
        self.active.append(copy)
        if copy.staged_all:
            self._complete(copy)
            return None
        return copy

    def _collect(self, done: set[Future[None]]) -> None:
        for future in done:
            copy, index = self.futures.pop(future)
            copy.in_flight -= 1
            self._block_done(future, copy, index)
            if copy.staged_all:
                self._complete(copy)

    def _block_done(self, future: Future[None], copy: _FileCopy, index: int) -> None:
        try:
            future.result()
        except SourceError as error:
            if error.permanent:
                raise _Failed(copy.progress, error.reason) from None
            raise
        copy.progress.bytes_copied += copy.block_range(index)[1]
        copy.dirty = True

    # -- one file: prepare and complete (in the orchestrating thread) --

    def prepare(self, progress: FileProgress) -> _FileCopy:
        url = self.sources.url(progress)
        copy = _FileCopy(progress, url, self.registration.blob_path(progress.target, progress.generation))
        self._source_info(progress, url)  # still the pinned version: else the copy fails now
        copy.ids = block_ids(
            self.registration.registration_id, progress.source_etag, progress.block_size, progress.size or 0
        )
        if self.deps.copier.committed_size(copy.path, copy.ids) == progress.size:
            committed = self.deps.files.stat(copy.path)  # committed before a crash lost the checkpoint
            if committed is not None:
                self._committed(copy, committed.etag)
                return copy
        staged = self.deps.copier.staged_blocks(copy.path)
        done = 0
        for index, block_id in enumerate(copy.ids):
            length = copy.block_range(index)[1]
            if staged.get(block_id) == length:
                done += length
            else:
                copy.pending.append(index)
        if done != progress.bytes_copied:
            progress.bytes_copied = done
            copy.dirty = True
        return copy

    def _complete(self, copy: _FileCopy) -> None:
        self._source_info(copy.progress, copy.url)  # the version pinned at the start is still the one staged
        committed = self.deps.copier.commit(copy.path, copy.ids, copy.progress.content_md5)
        if committed.size != copy.progress.size:
            raise _Failed(copy.progress, f"copied {committed.size} bytes, expected {copy.progress.size}")
        self._committed(copy, committed.etag)
        self.active.remove(copy)

    def _committed(self, copy: _FileCopy, etag: str) -> None:
        self.progressed = True
        copy.progress.committed(etag)
        self._save(copy.progress)
        copy.dirty = False

    # -- hashing the registry's own copy --

    def hash_files(self, files: list[FileProgress]) -> bool:
        """SHA-256 of each committed file, read back from the registry's copy (never the source),
        checked against the digest its owner gave; True once every file is verified."""
        for progress in files:
            if progress.state is FileState.HASHING and not self._hash(progress):
                return False
        return True

    def _hash(self, progress: FileProgress) -> bool:
        """Hash one file from where it stopped; False if the budget ran out first (saved)."""
        path = self.registration.blob_path(progress.target, progress.generation)
        inherited = self.sources.inherited_sha256(progress)
        digest = inherited or self._stream_digest(progress, path)
        if digest is None:
            return False
        expected = progress.expected_sha256 or inherited
        if expected and digest != expected:
            self.deps.files.delete(path)  # the registry never serves bytes other than those expected
            raise _Failed(progress, f"its SHA-256 is {digest}, not the expected {expected}")
        try:
            etag = self.deps.files.set_sha256(path, digest, progress.blob_etag)
        except ConcurrentUpdate:
            raise _Failed(progress, "the registry's copy changed while it was hashed") from None
        old = progress.served_generation
        progress.verified(digest, etag, self.deps.now())
        self._save(progress)
        self.progressed = True
        for generation in range(old + 1, progress.generation):  # attempts that were never served
            self.deps.files.delete(self.registration.blob_path(progress.target, generation))
        if progress.retired_at is not None:
            self.retiring = True
        return True

    def _stream_digest(self, progress: FileProgress, path: str) -> str | None:
        """The digest of the blob, read in chunks (one read ahead) from where hashing stopped;
        None if the budget ran out first (the state is saved: a later slice resumes there)."""
        hasher = Sha256.resume(progress.hash_state, progress.bytes_hashed)
        offset = hasher.length  # 0 when the saved state could not be resumed
        size = progress.size or 0
        saved_at = offset
        with ThreadPoolExecutor(1, thread_name_prefix="hash") as reader:
            ahead = self._read_ahead(reader, path, progress, offset, size)
            while ahead is not None:
                chunk = ahead.result()
                offset += len(chunk)
                ahead = self._read_ahead(reader, path, progress, offset, size)
                hasher.update(chunk)
                self.progressed = True
                # A hash whose state cannot be saved runs to the file's end: stopping would
                # only start it again from byte 0 next time, for ever.
                stopping = ahead is not None and hasher.resumable and self._time_is_up()
                if offset - saved_at >= HASH_CHECKPOINT_BYTES or stopping or ahead is None:
                    progress.bytes_hashed, progress.hash_state = offset, hasher.state()
                    self._save(progress)
                    saved_at = offset
                if stopping:
                    assert ahead is not None
                    ahead.cancel()
                    return None
                self._checkpoint_if_due()
        return hasher.hexdigest()

    def _read_ahead(
        self, reader: ThreadPoolExecutor, path: str, progress: FileProgress, offset: int, size: int
    ) -> Future[bytes] | None:
        if offset >= size:
            return None
        length = min(HASH_CHUNK_BYTES, size - offset)
        return reader.submit(self._read_chunk, path, offset, length, progress)

    def _read_chunk(self, path: str, offset: int, length: int, progress: FileProgress) -> bytes:
        try:
            return self.deps.files.read_range(path, offset, length, progress.blob_etag)
        except (ConcurrentUpdate, NotFound):
            raise _Failed(progress, "the registry's copy changed while it was hashed") from None

    # -- checkpoints --

    def _save(self, progress: FileProgress) -> None:
        try:
            self.deps.store.replace_file(self.registration, progress)
        except ConcurrentUpdate:
            raise _LeaseLost() from None

    def _checkpoint_if_due(self) -> None:
        if self.clock() >= self.next_checkpoint:
            self.checkpoint()

    def checkpoint(self) -> None:
        for copy in self.active:
            if copy.dirty:
                self._save(copy.progress)
                copy.dirty = False
        self.registration.renew_lease(self.deps.now(), self.policy.lease_seconds)
        try:
            lifecycle.save_held(self.deps.store, self.registration, lease=self.lease)
        except ConcurrentUpdate:
            raise _LeaseLost() from None
        self.next_checkpoint = self.clock() + self.policy.checkpoint_seconds


# -- one job message --------------------------------------------------------------------------------


def process_job(
    job: CopyJob,
    deps: Dependencies,
    *,
    redelivered: bool = False,
    policy: CopyPolicy | None = None,
) -> Outcome:
    """Work on one job message for at most the policy's time budget (the settings', by default).

    `redelivered`: the queue delivered this message before (an earlier attempt died or failed).
    Transient failures are raised (after the lease is released) so that the message is retried.
    """
    registration = deps.store.get(job.owner, job.name, job.version)
    if registration is None or registration.registration_id != job.registration_id or registration.gone:
        return Outcome.IGNORED
    if job.purpose == "retire":
        return retire(deps, registration)
    policy = policy or CopyPolicy.of(deps)
    try:
        lease = _take_lease(deps, registration, policy)
    except LeaseHeld as held:
        if redelivered:
            _retry_when_lapsed(deps, job, held)
        return Outcome.BUSY
    except ConcurrentUpdate:
        return Outcome.BUSY
    if lease is None:
        return Outcome.IGNORED
    if registration.given_up:
        lifecycle.fail(
            deps, registration, "Copy failed: the worker died repeatedly while copying", lease=lease
        )
        return Outcome.FAILED
    return _work(deps, registration, lease, policy)


def _take_lease(deps: Dependencies, registration: Registration, policy: CopyPolicy) -> str | None:
    """The new lease id (None if the registration has nothing to copy); LeaseHeld, ConcurrentUpdate."""
    previous = registration.lease_id
    try:
        registration.take_lease(deps.now(), policy.lease_seconds)
    except IllegalTransition:
        return None
    lifecycle.save_held(deps.store, registration, lease=previous)
    return registration.lease_id


def _retry_when_lapsed(deps: Dependencies, job: CopyJob, held: LeaseHeld) -> None:
    """An earlier delivery of this very message died holding the lease (a first delivery is a
    duplicate, and its holder's own message comes back if the holder dies): come back when the
    lease lapses. One retry per held lease: redeliveries during the same lease collapse into it."""
    retry = dataclasses.replace(job, purpose="retry", sequence=int(held.until.timestamp()))
    deps.queue.send(retry, delay_seconds=(held.until - deps.now()).total_seconds() + 1)


def _work(deps: Dependencies, registration: Registration, lease: str, policy: CopyPolicy) -> Outcome:
    try:
        sources = Sources.of(deps, registration, policy)
    except Unavailable as unreadable:
        lifecycle.fail(deps, registration, f"Copy failed: {unreadable}", lease=lease)
        return Outcome.FAILED
    work = Slice(deps, registration, sources, policy, deps.monotonic, lease)
    try:
        files = _file_rows(deps, registration, lease)
        if not work.measure(files):
            return _continue(deps, registration, lease, work)
        work.check_quotas(files)
        if not work.run(files) or not work.hash_files(files):
            return _continue(deps, registration, lease, work)
    except (_LeaseLost, ConcurrentUpdate):
        _after_lost_lease(deps, registration)
        return Outcome.LOST
    except _Failed as failure:
        return _fail_file(deps, registration, lease, failure)
    except (SourceError, StorageUnavailable) as error:
        _release(deps, registration, lease, error=str(error))
        raise
    except Exception as error:
        if _gone(deps, registration):  # deleted under us (its blocks too): nothing to retry
            _after_lost_lease(deps, registration)
            return Outcome.LOST
        # Anything unforeseen: give the lease back so that the retries (and in the end the
        # poison queue) see the failure, rather than a lease held by nobody.
        _release(deps, registration, lease, error=f"unexpected error ({type(error).__name__})")
        raise
    return _finish(deps, registration, lease, work)


def _file_rows(deps: Dependencies, registration: Registration, lease: str) -> list[FileProgress]:
    """This registration's file rows, created where missing; failed and updated files reset."""
    files = deps.store.files(registration)
    present = {f.index for f in files}
    expected = registration.expected_digests
    missing = [
        FileProgress(index=i, target=t, expected_sha256=expected.get(t, ""))
        for i, t in enumerate(registration.file_names)
        if i not in present
    ]
    if missing:
        deps.store.insert_files(registration, missing)
        files = deps.store.files(registration)
    refresh = set(registration.refresh_files)
    for progress in files:
        # A restarted registration tries its failed files anew; an update copies its files anew.
        if progress.state is FileState.FAILED or progress.target in refresh:
            progress.reset(expected.get(progress.target, ""))
            deps.store.replace_file(registration, progress)
    if refresh:
        registration.refresh_files = []  # done: the next slice must not reset them again
        lifecycle.save_held(deps.store, registration, lease=lease)
    return files


def _continue(deps: Dependencies, registration: Registration, lease: str, work: Slice) -> Outcome:
    work.checkpoint()
    if work.retiring:
        retire_later(deps, registration)
    registration.slices += 1  # a fresh message id for each continuation, whatever came before
    if not _release(deps, registration, lease):
        return Outcome.LOST
    # If this send fails, the message is retried: nothing is lost.
    deps.queue.send(job_for(registration, "continue", registration.slices))
    return Outcome.CONTINUED


def _finish(deps: Dependencies, registration: Registration, lease: str, work: Slice) -> Outcome:
    # The sources' SAS tokens are no longer needed: drop them, keep the other write-only values.
    secrets = unseal(deps, registration)
    secrets["model_files"] = {}
    seal(deps, registration, secrets)
    total = len(registration.file_names)
    manifest = manifests.record_revision(deps, registration)
    if work.retiring:
        retire_later(deps, registration)
    registration.revision = manifest.revision
    registration.manifest_digest = manifest.digest
    message = f"Registered {total} file{'s' * (total != 1)} (revision {manifest.revision})"
    ended = lifecycle.finish(deps, registration, message, lease=lease)
    if ended is None:
        _after_lost_lease(deps, registration)
        return Outcome.LOST
    return Outcome.FINISHED


def _fail_file(deps: Dependencies, registration: Registration, lease: str, failure: _Failed) -> Outcome:
    failure.progress.fail(failure.reason)
    try:
        deps.store.replace_file(registration, failure.progress)
    except ConcurrentUpdate:
        return Outcome.LOST
    message = f"Copying '{failure.progress.target}' failed: {failure.reason}"
    lifecycle.fail(deps, registration, message, lease=lease)
    return Outcome.FAILED


def _gone(deps: Dependencies, registration: Registration) -> bool:
    """The registration was deleted (or is being deleted, or was registered anew)."""
    current = deps.store.get(registration.owner, registration.name, registration.version)
    return current is None or current.registration_id != registration.registration_id or current.gone


def _after_lost_lease(deps: Dependencies, registration: Registration) -> None:
    """Another worker took over, or the model was deleted (or registered anew) under us. In the
    second case a file this slice committed after the delete would be left behind: its blobs are
    this registration's alone (their path names its id), so remove them."""
    if _gone(deps, registration):
        deps.store.forget_files(registration)
        removed = deps.files.delete_prefix(registration.blob_prefix)
        log.warning(
            "%s was deleted during its copy; removed %d blob(s) left behind", registration.key, removed
        )
    else:
        log.warning("lost the lease on %s to another worker; stopping", registration.key)


def _release(deps: Dependencies, registration: Registration, lease: str, *, error: str = "") -> bool:
    registration.release_lease(deps.now(), error=error)
    try:
        lifecycle.save_held(deps.store, registration, lease=lease)
    except (ConcurrentUpdate, StorageUnavailable):
        return False
    return True


# Read links of the registry's blobs are valid this long (services/models.py): a replaced file's
# blob stays until the links handed out for it have expired.
RETIRE_AFTER = DOWNLOAD_TTL + timedelta(minutes=1)


def retire_later(deps: Dependencies, registration: Registration) -> None:
    job = job_for(registration, "retire", int(deps.now().timestamp()))
    try:
        deps.queue.send(job, delay_seconds=RETIRE_AFTER.total_seconds())
    except StorageUnavailable:  # the blob outstays its welcome: it is removed with the model
        log.warning("could not schedule the removal of replaced files of %s", registration.key)


def retire(deps: Dependencies, registration: Registration) -> Outcome:
    """Remove the blobs of replaced generations whose read links have expired (no lease needed:
    no worker writes to a generation that is no longer served)."""
    now, pending = deps.now(), False
    for progress in deps.store.files(registration):
        if progress.retired_at is None:
            continue
        if progress.retired_at + RETIRE_AFTER > now:
            pending = True
            continue
        for generation in range(progress.served_generation):
            deps.files.delete(registration.blob_path(progress.target, generation))
        progress.retired_at = None
        try:
            deps.store.replace_file(registration, progress)
        except ConcurrentUpdate:
            pending = True  # it changed meanwhile: look again later
    if pending:
        retire_later(deps, registration)
    return Outcome.RETIRED


def fail_poisoned(message: str | bytes, deps: Dependencies) -> bool:
    """A job that kept failing reached the poison queue: its registration reads Failed."""
    job = CopyJob.from_json(message)
    registration = deps.store.get(job.owner, job.name, job.version)
    if registration is None or registration.registration_id != job.registration_id:
        return False
    now = deps.now()

    def ending(r: Registration) -> None:
        r.fail(now, f"Copy failed after repeated attempts: {r.last_error or 'unknown error'}")

    ended = lifecycle.conclude(deps, registration, ending, lease=None)
    events.dispatch_quietly(deps, job.owner)
    return ended is not None
