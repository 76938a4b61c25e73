"""The copy worker: server-side, block by block, resumable, within a time budget per invocation.

One invocation takes a lease on the registration (an ETag-conditioned write), copies until its
budget is spent, checkpoints and enqueues a continuation. Blocks already staged at the
destination are found again from its uncommitted block list, so a crash loses at most the
blocks that were in flight. Every write of progress is conditioned on the ETag read before it:
a worker whose lease was taken over stops at its next checkpoint.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import logging
import math
import time
import uuid
from collections import deque
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from registry.ports import BlobCopier, JobQueue, RegistrationStore
from registry.records import (
    EPOCH,
    ConcurrentUpdate,
    CopyJob,
    FileProgress,
    FileState,
    Registration,
    SourceError,
    SourceInfo,
    State,
    StorageUnavailable,
    utcnow,
)
from registry.sealing import Sealer
from registry.services.catalog import refresh_listing
from registry.services.registration import job_for, sealing_binding

log = logging.getLogger(__name__)

MAX_BLOCKS = 50_000  # per blob, a Blob Storage limit
MIB = 1024 * 1024
MAX_TAKEOVERS = 5  # workers that died holding the lease, in a row, before the copy is given up


class Outcome(StrEnum):
    IGNORED = "ignored"  # stale or unknown job, or the registration already ended
    BUSY = "busy"  # another worker holds the lease: this message is a duplicate
    CONTINUED = "continued"  # the budget ran out; a continuation was enqueued
    FINISHED = "finished"
    FAILED = "failed"
    LOST = "lost"  # another worker took over mid-slice


@dataclass(frozen=True)
class CopyPolicy:
    block_size: int
    concurrency: int
    time_budget_seconds: float
    lease_seconds: float

    @property
    def checkpoint_seconds(self) -> float:
        # Often enough that the lease never lapses while its holder is alive.
        return min(5.0, self.lease_seconds / 3)


def block_size_for(size: int, preferred: int) -> int:
    """The preferred size, grown (in whole MiB) only when the file would need too many blocks."""
    needed = math.ceil(size / MAX_BLOCKS) if size else preferred
    return max(preferred, math.ceil(needed / MIB) * MIB)


def block_ids(source_etag: str, block_size: int, size: int) -> list[str]:
    """Deterministic ids, tied to the source version and block size so that no block staged
    from another version or with another size is ever mistaken for one of these."""
    tag = hashlib.sha256(f"{source_etag}|{block_size}".encode()).hexdigest()[:12]
    count = math.ceil(size / block_size)
    return [base64.b64encode(f"{tag}-{i:06d}".encode()).decode() for i in range(count)]


class _LeaseLost(Exception):
    pass


class _Failed(Exception):
    def __init__(self, progress: FileProgress, reason: str) -> None:
        super().__init__(f"copying {progress.target!r} failed: {reason}")
        self.progress = progress
        self.reason = reason


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


class _Slice:
    """One invocation's share of the work on one registration."""

    def __init__(
        self,
        registration: Registration,
        sources: dict[str, str],
        *,
        store: RegistrationStore,
        copier: BlobCopier,
        policy: CopyPolicy,
        now: Callable[[], datetime],
        clock: Callable[[], float],
    ) -> None:
        self.registration = registration
        self.sources = sources
        self.store = store
        self.copier = copier
        self.policy = policy
        self.now = now
        self.clock = clock
        self.deadline = clock() + policy.time_budget_seconds
        self.next_checkpoint = clock() + policy.checkpoint_seconds
        self.progressed = False

    def out_of_time(self) -> bool:
        return self.clock() >= self.deadline

    # -- preparation and completion of one file (in the orchestrating thread) --

    def prepare(self, progress: FileProgress) -> _FileCopy:
        url = self.sources.get(progress.target)
        if url is None:
            raise _Failed(progress, "its source is no longer known; register or update the file again")
        copy = _FileCopy(progress, url, self.registration.blob_path(progress.target))
        info = self._source(copy)
        if not progress.source_etag:
            progress.source_etag = info.etag
            progress.size = info.size
            progress.content_md5 = info.content_md5
            progress.block_size = block_size_for(info.size, self.policy.block_size)
            progress.state = FileState.COPYING
            self._save(progress)
        copy.ids = block_ids(progress.source_etag, progress.block_size, progress.size or 0)
        if self.copier.committed_size(copy.path, copy.ids) == progress.size:
            self._finish(copy, progress.size or 0)  # committed before a crash lost the checkpoint
            return copy
        staged = self.copier.staged_blocks(copy.path)
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

    def _source(self, copy: _FileCopy) -> SourceInfo:
        try:
            info = self.copier.source_info(copy.url)
        except SourceError as error:
            if error.permanent:
                raise _Failed(copy.progress, error.reason) from None
            raise
        pinned = copy.progress.source_etag
        if pinned and (info.etag != pinned or info.size != copy.progress.size):
            raise _Failed(copy.progress, "the source changed during the copy")
        return info

    def complete(self, copy: _FileCopy) -> None:
        self._source(copy)  # the version pinned at the start is still the one staged
        size = self.copier.commit(copy.path, copy.ids, copy.progress.content_md5)
        if size != copy.progress.size:
            raise _Failed(copy.progress, f"copied {size} bytes, expected {copy.progress.size}")
        self._finish(copy, size)

    def _finish(self, copy: _FileCopy, size: int) -> None:
        self.progressed = True
        copy.progress.state = FileState.FINISHED
        copy.progress.bytes_copied = size
        self._save(copy.progress)
        copy.dirty = False

    def _save(self, progress: FileProgress) -> None:
        try:
            self.store.replace_file(self.registration, progress)
        except ConcurrentUpdate:
            raise _LeaseLost() from None

    # -- the block pump --

    def run(self, files: list[FileProgress]) -> bool:
        """Copy until done (True) or out of time (False). Raises _Failed, _LeaseLost or errors."""
        todo = deque(p for p in files if p.state is not FileState.FINISHED)
        active: list[_FileCopy] = []
        futures: dict[Future[None], tuple[_FileCopy, int]] = {}
        pool = ThreadPoolExecutor(self.policy.concurrency, thread_name_prefix="copy")
        try:
            while True:
                # Every slice does some work, however small its budget, so that it always progresses.
                while len(futures) < self.policy.concurrency and not (self.progressed and self.out_of_time()):
                    copy = next((c for c in active if c.pending), None)
                    if copy is None:
                        if not todo:
                            break
                        copy = self.prepare(todo.popleft())
                        if copy.progress.state is FileState.FINISHED:
                            continue
                        active.append(copy)
                        if not copy.pending and copy.in_flight == 0:
                            self.complete(copy)
                            active.remove(copy)
                        continue
                    index = copy.pending.popleft()
                    offset, length = copy.block_range(index)
                    future = pool.submit(
                        self.copier.stage_block, copy.path, copy.ids[index], copy.url, offset, length
                    )
                    futures[future] = (copy, index)
                    copy.in_flight += 1
                    self.progressed = True
                if not futures:
                    break
                done, _ = wait(futures, timeout=1.0, return_when=FIRST_COMPLETED)
                for future in done:
                    copy, index = futures.pop(future)
                    copy.in_flight -= 1
                    self._block_done(future, copy, index)
                    if not copy.pending and copy.in_flight == 0:
                        self.complete(copy)
                        active.remove(copy)
                if self.clock() >= self.next_checkpoint:
                    self.checkpoint(active)
            self.checkpoint(active)
            return not todo and not active
        except BaseException:
            for future in futures:
                future.cancel()
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _block_done(self, future: Future[None], copy: _FileCopy, index: int) -> None:
        try:
            future.result()
        except SourceError as error:
            if error.permanent:
                raise _Failed(copy.progress, error.reason) from None
            raise
        copy.progress.bytes_copied += copy.block_range(index)[1]
        copy.dirty = True

    def checkpoint(self, active: list[_FileCopy]) -> None:
        for copy in active:
            if copy.dirty:
                self._save(copy.progress)
                copy.dirty = False
        registration = self.registration
        registration.last_progress_at = self.now()
        registration.lease_until = registration.last_progress_at + timedelta(
            seconds=self.policy.lease_seconds
        )
        try:
            write_worker_fields(self.store, registration, expected_lease=registration.lease_id)
        except ConcurrentUpdate:
            raise _LeaseLost() from None
        self.next_checkpoint = self.clock() + self.policy.checkpoint_seconds


def _prepare_files(store: RegistrationStore, registration: Registration) -> list[FileProgress]:
    files = store.files(registration)
    present = {f.index for f in files}
    missing = [
        FileProgress(index=i, target=target)
        for i, target in enumerate(registration.file_names)
        if i not in present
    ]
    if missing:
        store.insert_files(registration, missing)
        files = store.files(registration)
    refresh = set(registration.refresh_files)
    for progress in files:
        # A restarted registration tries its failed files anew; an update copies its files anew.
        if progress.state is FileState.FAILED or progress.target in refresh:
            progress.state, progress.error, progress.source_etag = FileState.PENDING, "", ""
            progress.bytes_copied, progress.size = 0, None
            store.replace_file(registration, progress)
    if refresh:
        registration.refresh_files = []  # done: the next slice must not reset them again
        write_worker_fields(store, registration, expected_lease=registration.lease_id)
    return files


def process_job(
    job: CopyJob,
    *,
    store: RegistrationStore,
    queue: JobQueue,
    copier: BlobCopier,
    sealer: Sealer,
    policy: CopyPolicy,
    now: Callable[[], datetime] = utcnow,
    clock: Callable[[], float] = time.monotonic,
    redelivered: bool = False,
) -> Outcome:
    """Work on one job message for at most the policy's time budget.

    `redelivered`: the queue delivered this message before (an earlier attempt died or failed).
    Transient failures are raised (after the lease is released) so that the message is retried.
    """
    registration = store.get(job.owner, job.name, job.version)
    if (
        registration is None
        or registration.registration_id != job.registration_id
        or registration.state is not State.IN_PROGRESS
    ):
        return Outcome.IGNORED
    if registration.lease_id and registration.lease_until > now():
        if redelivered:
            # An earlier delivery of this very message died holding the lease (a first delivery
            # is a duplicate, and its holder's own message comes back if the holder dies):
            # come back when the lease lapses.
            # One retry per held lease: redeliveries during the same lease collapse into it.
            retry = dataclasses.replace(
                job, purpose="retry", sequence=int(registration.lease_until.timestamp())
            )
            queue.send(retry, delay_seconds=(registration.lease_until - now()).total_seconds() + 1)
        return Outcome.BUSY
    if registration.lease_id:
        # Taking over a lease that was never released: its holder died mid-slice.
        registration.takeovers += 1
        if registration.takeovers > MAX_TAKEOVERS:
            _end(
                registration,
                store,
                State.FAILED,
                "Copy failed: the worker died repeatedly while copying",
                now,
            )
            return Outcome.FAILED
    free_lease = registration.lease_id
    registration.lease_id = uuid.uuid4().hex
    registration.lease_until = now() + timedelta(seconds=policy.lease_seconds)
    registration.picked_up = True
    registration.last_progress_at = now()
    try:
        write_worker_fields(store, registration, expected_lease=free_lease)
    except ConcurrentUpdate:
        return Outcome.BUSY
    try:
        sources = sealer.unseal(registration.sealed, sealing_binding(registration))["model_files"]
    except ValueError:
        message = "Copy failed: the sources cannot be read (the sealing key changed?)"
        _end(registration, store, State.FAILED, message, now)
        return Outcome.FAILED
    work = _Slice(registration, sources, store=store, copier=copier, policy=policy, now=now, clock=clock)
    try:
        finished = work.run(_prepare_files(store, registration))
    except (_LeaseLost, ConcurrentUpdate):
        _after_lost_lease(registration, store, copier)
        return Outcome.LOST
    except _Failed as failure:
        failure.progress.state, failure.progress.error = FileState.FAILED, failure.reason
        try:
            store.replace_file(registration, failure.progress)
        except ConcurrentUpdate:
            return Outcome.LOST
        _end(
            registration,
            store,
            State.FAILED,
            f"Copying '{failure.progress.target}' failed: {failure.reason}",
            now,
        )
        log.warning("registration %s failed: %s", registration.key, failure)
        return Outcome.FAILED
    except (SourceError, StorageUnavailable) as error:
        _release(registration, store, now, last_error=str(error))
        raise
    except Exception as error:
        # Anything unforeseen: give the lease back so that the retries (and in the end the
        # poison queue) see the failure, rather than a lease held by nobody.
        _release(registration, store, now, last_error=f"unexpected error ({type(error).__name__})")
        raise
    if finished:
        _finish(registration, store, sealer, now)
        return Outcome.FINISHED
    registration.slices += 1  # a fresh message id for each continuation, whatever came before
    if not _release(registration, store, now):
        return Outcome.LOST
    # If this send fails, the message is retried: nothing is lost.
    queue.send(job_for(registration, "continue", registration.slices))
    return Outcome.CONTINUED


# What the worker owns in a registration record; the owner's edits (visibility, description,
# metainfo) land on other fields, so a PATCH during a copy merges instead of stopping it.
_WORKER_FIELDS = (
    "state", "message", "last_progress_at", "lease_id", "lease_until", "picked_up", "takeovers",
    "last_error", "sealed", "finished_once", "slices", "refresh_files",
)  # fmt: skip


def write_worker_fields(store: RegistrationStore, registration: Registration, *, expected_lease: str) -> None:
    """Write the record (If-Match). If someone else wrote it meanwhile but the lease is still the
    one expected, re-apply the worker's fields to the fresh record and try again; otherwise
    ConcurrentUpdate (another worker has it, or it was deleted or registered anew)."""
    for _ in range(3):
        try:
            store.replace(registration)
            return
        except ConcurrentUpdate:
            fresh = store.get(registration.owner, registration.name, registration.version)
            if (
                fresh is None
                or fresh.registration_id != registration.registration_id
                or fresh.lease_id != expected_lease
            ):
                raise
            for name in _WORKER_FIELDS:
                setattr(fresh, name, getattr(registration, name))
            fresh.updated_at = max(fresh.updated_at, registration.updated_at)
            vars(registration).update(vars(fresh))  # the slice keeps working on this same object
    raise ConcurrentUpdate()


def _after_lost_lease(registration: Registration, store: RegistrationStore, copier: BlobCopier) -> None:
    """Another worker took over, or the model was deleted under us. In the second case a file this
    slice committed after the delete would be left behind: remove what is under its path."""
    if store.get(registration.owner, registration.name, registration.version) is None:
        removed = copier.delete_prefix(registration.blob_path(""))
        log.warning(
            "%s was deleted during its copy; removed %d blob(s) left behind", registration.key, removed
        )
    else:
        log.warning("lost the lease on %s to another worker; stopping", registration.key)


def _release(
    registration: Registration, store: RegistrationStore, now: Callable[[], datetime], last_error: str = ""
) -> bool:
    held = registration.lease_id
    registration.lease_id = ""
    registration.lease_until = EPOCH
    registration.takeovers = 0
    registration.last_progress_at = now()
    if last_error:
        registration.last_error = last_error
    try:
        write_worker_fields(store, registration, expected_lease=held)
    except (ConcurrentUpdate, StorageUnavailable):
        return False
    return True


def _end(
    registration: Registration,
    store: RegistrationStore,
    state: State,
    message: str,
    now: Callable[[], datetime],
) -> bool:
    registration.state = state
    registration.message = message
    registration.updated_at = now()
    if not _release(registration, store, now):
        log.warning("could not record the end of %s; a later message will redo it", registration.key)
        return False
    refresh_listing(store, registration)  # after the record: lists follow it
    return True


def _finish(
    registration: Registration, store: RegistrationStore, sealer: Sealer, now: Callable[[], datetime]
) -> None:
    # The sources' SAS tokens are no longer needed: drop them, keep the other write-only values.
    secrets = sealer.unseal(registration.sealed, sealing_binding(registration))
    secrets["model_files"] = {}
    registration.sealed = sealer.seal(secrets, sealing_binding(registration))
    registration.finished_once = True
    total = len(registration.file_names)
    _end(registration, store, State.FINISHED, f"Registered {total} file{'s' * (total != 1)}", now)
    log.info("registration %s finished", registration.key)


def fail_poisoned(
    message: str | bytes, *, store: RegistrationStore, now: Callable[[], datetime] = utcnow
) -> bool:
    """A job that kept failing reached the poison queue: its registration reads Failed."""
    job = CopyJob.from_json(message)
    for _ in range(3):
        registration = store.get(job.owner, job.name, job.version)
        if (
            registration is None
            or registration.registration_id != job.registration_id
            or registration.state is not State.IN_PROGRESS
            or (registration.lease_id and registration.lease_until > now())
        ):
            return False  # gone, ended, or another message's worker is making progress
        reason = registration.last_error or "unknown error"
        registration.state = State.FAILED
        registration.message = f"Copy failed after repeated attempts: {reason}"
        registration.updated_at = now()
        try:
            store.replace(registration)
            return True
        except ConcurrentUpdate:
            continue
    return False
