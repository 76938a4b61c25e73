"""Upload a folder to the user's container, several files at once and block by block, resumably.

- A file already in the container with the same size and Content-MD5 is skipped.
- A larger file goes up as blocks whose ids derive from the file's size, modification time,
  the block size and the block's index; blocks that an interrupted run already staged (the
  blob's uncommitted block list) are not sent again. The commit sets the file's Content-MD5.
- A file up to `single_put_max` (32 MiB) goes up in one Put Blob, as the SDK's own upload does
  up to 64 MiB: one request is faster than blocks and a commit, and a cut-off small file is
  cheap to send again.
"""

from __future__ import annotations

import base64
import hashlib
import math
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

from azure.core.exceptions import ResourceNotFoundError
from azure.storage.blob import BlobBlock, BlobClient, ContainerClient, ContentSettings

from registry.cli.modelspec import LocalFile

MIB = 1024 * 1024
MAX_BLOCKS = 50_000  # per blob, the service's limit
MAX_BLOCK_SIZE = 4000 * MIB


class Cancelled(Exception):
    """The upload was asked to stop (Ctrl-C); what was staged stays for the next run."""


class UploadProgress(Protocol):
    def file_started(self, target: str, size: int) -> None: ...

    def advanced(self, target: str, nbytes: int) -> None: ...

    def file_done(self, target: str, outcome: str) -> None: ...


class NoProgress:
    def file_started(self, target: str, size: int) -> None:
        pass

    def advanced(self, target: str, nbytes: int) -> None:
        pass

    def file_done(self, target: str, outcome: str) -> None:
        pass


@dataclass(frozen=True)
class UploadSettings:
    block_size: int = 8 * MIB
    single_put_max: int = 32 * MIB  # files up to this size go up in one request
    concurrency: int = 8  # blocks in flight at once, over all files
    parallel_files: int = 4
    bytes_per_second: float | None = None  # a cap on the upload rate (None: as fast as it goes)


@dataclass(frozen=True)
class FileOutcome:
    target: str
    size: int
    outcome: str  # "uploaded", "resumed" (some blocks were already staged) or "skipped" (already there)
    bytes_sent: int
    content_md5: str  # base64, as the blob's Content-MD5

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.target,
            "size": self.size,
            "outcome": self.outcome,
            "bytes_sent": self.bytes_sent,
            "content_md5": self.content_md5,
        }


@dataclass
class UploadReport:
    files: list[FileOutcome]
    seconds: float

    @property
    def bytes_sent(self) -> int:
        return sum(f.bytes_sent for f in self.files)

    @property
    def bytes_total(self) -> int:
        return sum(f.size for f in self.files)

    def names(self, outcome: str) -> list[str]:
        return [f.target for f in self.files if f.outcome == outcome]

    def as_json(self) -> dict[str, Any]:
        return {
            "files": [f.as_json() for f in self.files],
            "uploaded": self.names("uploaded"),
            "resumed": self.names("resumed"),
            "skipped": self.names("skipped"),
            "bytes_sent": self.bytes_sent,
            "bytes_total": self.bytes_total,
            "seconds": round(self.seconds, 3),
        }


@dataclass
class RateLimit:
    """Paces the starts of sends so that, over all threads, they average `bytes_per_second`."""

    bytes_per_second: float | None
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    _next_start: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, nbytes: int) -> None:
        if not self.bytes_per_second:
            return
        with self._lock:
            now = self.clock()
            start = max(self._next_start, now)
            self._next_start = start + nbytes / self.bytes_per_second
        if start > now:
            self.sleep(start - now)


def parse_rate(text: str) -> float:
    """`20M` (bytes a second, with an optional K, M or G: powers of 1024) as bytes a second."""
    units = {"": 1, "K": 1024, "M": MIB, "G": 1024 * MIB}
    value = text.strip().upper().removesuffix("/S").removesuffix("B")
    unit = value[-1:] if value[-1:] in ("K", "M", "G") else ""
    number = value[: len(value) - len(unit)]
    try:
        rate = float(number) * units[unit]
    except ValueError:
        raise ValueError(f"{text!r} is not a rate: use bytes a second, e.g. 500K, 20M or 1G") from None
    if rate <= 0:
        raise ValueError("the rate must be positive")
    return rate


def block_size_for(size: int, preferred: int) -> int:
    """The preferred block size, doubled until the file fits in the service's 50,000 blocks."""
    block = preferred
    while math.ceil(size / block) > MAX_BLOCKS and block < MAX_BLOCK_SIZE:
        block = min(block * 2, MAX_BLOCK_SIZE)
    return block


def block_ids(local: LocalFile, block_size: int) -> list[str]:
    """Deterministic ids of equal length: the same file (size, mtime) and block size give the same ids."""
    fingerprint = hashlib.sha256(f"{local.size}:{local.mtime_ns}:{block_size}".encode()).hexdigest()[:16]
    return [f"{fingerprint}{index:06d}" for index in range(max(1, math.ceil(local.size / block_size)))]


def file_md5(local: LocalFile) -> bytes:
    digest = hashlib.md5(usedforsecurity=False)
    with local.path.open("rb") as stream:
        while chunk := stream.read(4 * MIB):
            digest.update(chunk)
    return digest.digest()


def _b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode()


@dataclass
class _Uploader:
    container: ContainerClient
    prefix: str
    settings: UploadSettings
    progress: UploadProgress
    existing: dict[str, tuple[int, bytes | None]]  # blob name -> (size, Content-MD5)
    blocks: ThreadPoolExecutor
    cancel: threading.Event
    limit: RateLimit
    slots: threading.BoundedSemaphore

    def send(self, local: LocalFile) -> FileOutcome:
        blob_name = self.prefix + local.target
        self.progress.file_started(local.target, local.size)
        size, remote_md5 = self.existing.get(blob_name, (-1, None))
        if size == local.size and remote_md5:
            digest = file_md5(local)
            if digest == remote_md5:
                self.progress.advanced(local.target, local.size)
                self.progress.file_done(local.target, "skipped")
                return FileOutcome(local.target, local.size, "skipped", 0, _b64(digest))
        client = self.container.get_blob_client(blob_name)
        if local.size <= max(self.settings.single_put_max, self.settings.block_size):
            outcome = self._put_whole(client, local)
        else:
            outcome = self._put_blocks(client, local)
        self.progress.file_done(local.target, outcome.outcome)
        return outcome

    def _put_whole(self, client: BlobClient, local: LocalFile) -> FileOutcome:
        data = local.path.read_bytes()
        digest = hashlib.md5(data, usedforsecurity=False).digest()
        self._check_cancel()
        with self.slots:
            self.limit.take(len(data))
            client.upload_blob(
                data,
                overwrite=True,
                max_concurrency=1,
                content_settings=ContentSettings(content_md5=bytearray(digest)),
            )
        self.progress.advanced(local.target, len(data))
        return FileOutcome(local.target, local.size, "uploaded", len(data), _b64(digest))

    def _staged(self, client: BlobClient) -> dict[str, int]:
        try:
            _, uncommitted = client.get_block_list("uncommitted")
        except ResourceNotFoundError:
            return {}
        return {block.id: block.size for block in uncommitted}

    def _stage(self, client: BlobClient, target: str, block_id: str, data: bytes) -> int:
        try:
            self.limit.take(len(data))
            client.stage_block(block_id, data, length=len(data))
            self.progress.advanced(target, len(data))
            return len(data)
        finally:
            self.slots.release()

    def _put_blocks(self, client: BlobClient, local: LocalFile) -> FileOutcome:
        block_size = block_size_for(local.size, self.settings.block_size)
        ids = block_ids(local, block_size)
        staged = self._staged(client)
        digest = hashlib.md5(usedforsecurity=False)
        sends: list[Future[int]] = []
        reused = 0
        try:
            with local.path.open("rb") as stream:
                for block_id in ids:
                    data = stream.read(block_size)
                    digest.update(data)
                    if staged.get(block_id) == len(data):
                        reused += len(data)
                        self.progress.advanced(local.target, len(data))
                        continue
                    self.slots.acquire()
                    if self.cancel.is_set():
                        self.slots.release()
                        raise Cancelled()
                    sends.append(self.blocks.submit(self._stage, client, local.target, block_id, data))
            sent = sum(send.result() for send in sends)
        except BaseException:
            for send in sends:
                send.cancel()
            raise
        self._check_cancel()
        md5 = digest.digest()
        client.commit_block_list(
            [BlobBlock(block_id) for block_id in ids],
            content_settings=ContentSettings(content_md5=bytearray(md5)),
        )
        return FileOutcome(local.target, local.size, "resumed" if reused else "uploaded", sent, _b64(md5))

    def _check_cancel(self) -> None:
        if self.cancel.is_set():
            raise Cancelled()


def remote_files(container: ContainerClient, prefix: str) -> dict[str, tuple[int, bytes | None]]:
    """The committed blobs under `prefix`: name -> (size, Content-MD5)."""
    found = {}
    for blob in container.list_blobs(name_starts_with=prefix):
        md5 = blob.content_settings.content_md5
        found[blob.name] = (int(blob.size), bytes(md5) if md5 else None)
    return found


def upload_folder(
    files: Iterable[LocalFile],
    container: ContainerClient,
    prefix: str,
    settings: UploadSettings,
    progress: UploadProgress | None = None,
    cancel: threading.Event | None = None,
) -> UploadReport:
    """Upload `files` under `prefix`; returns what was sent, resumed and skipped."""
    started = time.monotonic()
    todo = sorted(files, key=lambda f: -f.size)  # the largest first: small ones fill in around them
    cancel = cancel or threading.Event()
    with (
        ThreadPoolExecutor(settings.concurrency, thread_name_prefix="registry-block") as blocks,
        ThreadPoolExecutor(settings.parallel_files, thread_name_prefix="registry-file") as workers,
    ):
        uploader = _Uploader(
            container=container,
            prefix=prefix,
            settings=settings,
            progress=progress or NoProgress(),
            existing=remote_files(container, prefix),
            blocks=blocks,
            cancel=cancel,
            limit=RateLimit(settings.bytes_per_second),
            slots=threading.BoundedSemaphore(settings.concurrency + settings.parallel_files),
        )
        futures = [workers.submit(uploader.send, local) for local in todo]
        try:
            outcomes = [future.result() for future in futures]
        except BaseException:
            cancel.set()
            for future in futures:
                future.cancel()
            raise
    return UploadReport(sorted(outcomes, key=lambda o: o.target), time.monotonic() - started)
