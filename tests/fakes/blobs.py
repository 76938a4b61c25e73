"""The registry's private container in memory: BlobCopier (the worker's side) and ModelFiles.

- it really copies byte ranges of its sources into staged blocks, keeps uncommitted and committed
  block lists apart, and is safe to call from the copy worker's thread pool;
- a URL from read_url is a valid copy source for that blob (as a SAS URL of the registry's own
  blob is for Put Block From URL) while its signature matches and it has not expired; the blob is
  read as it is when the copy reads it.
"""

from __future__ import annotations

import hashlib
import itertools
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, quote, unquote, urlsplit

from registry.domain.errors import ConcurrentUpdate, NotFound, SourceError, StorageUnavailable
from registry.domain.model import SourceInfo


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
    metadata: dict[str, str] = field(default_factory=dict)

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


def _check_blob_name(path: str) -> None:
    """Blob Storage's limits on a blob's name (the service answers 400 InvalidResourceName)."""
    if len(path) > 1024 or len(path.split("/")) > 254:
        raise ValueError(f"InvalidResourceName: a blob name of {len(path)} characters")


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
    # Called (outside the lock) before each stage_block, with the call's number (1-based); what
    # it returns is ignored.
    before_stage: Callable[[int, StageCall], object] | None = None
    # Called (outside the lock) after each successful commit, with the blob's path.
    after_commit: Callable[[str], None] | None = None
    read_url_calls: list[str] = field(default_factory=list)
    deleted_prefixes: list[str] = field(default_factory=list)
    fail_deletes: bool = False  # delete_prefix raises StorageUnavailable while set
    read_range_calls: list[tuple[str, int, int]] = field(default_factory=list)
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
        _check_blob_name(path)
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

    def commit(self, path: str, block_ids: list[str], content_md5: str) -> SourceInfo:
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
        return SourceInfo(len(blob.data), blob.etag, content_md5)

    # -- the ModelFiles port --

    def stat(self, path: str) -> SourceInfo | None:
        with self._lock:
            blob = self.committed.get(path)
            return SourceInfo(len(blob.data), blob.etag, blob.content_md5) if blob else None

    def read(self, path: str, max_bytes: int) -> bytes | None:
        with self._lock:
            blob = self.committed.get(path)
            return blob.data[:max_bytes] if blob else None

    def read_range(self, path: str, offset: int, length: int, etag: str) -> bytes:
        with self._lock:
            self.read_range_calls.append((path, offset, length))
            blob = self.committed.get(path)
            if blob is None:
                raise NotFound()
            if blob.etag != etag:
                raise ConcurrentUpdate()
            return blob.data[offset : offset + length]

    def set_sha256(self, path: str, sha256: str, etag: str) -> str:
        with self._lock:
            blob = self.committed.get(path)
            if blob is None or blob.etag != etag:
                raise ConcurrentUpdate()
            blob.metadata = {"sha256": sha256}
            blob.etag = f'"0x8D{next(self._etags):012X}"'
            return blob.etag

    def delete(self, path: str) -> None:
        with self._lock:
            self.committed.pop(path, None)
            self.staged.pop(path, None)

    def read_url(self, path: str, ttl: timedelta) -> str:
        """A read-only URL with a fake SAS (whether or not the blob exists, as a SAS is)."""
        expiry = (datetime.now(UTC) + ttl).replace(microsecond=0).isoformat()
        with self._lock:
            self.read_url_calls.append(path)
        query = f"se={quote(expiry)}&sp=r&sig={_read_signature(path, expiry)}"
        return f"{REGISTRY_CONTAINER_URL}/{quote(path)}?{query}"

    def delete_prefix(self, prefix: str) -> int:
        """As the adapter: committed blobs and blobs with only uncommitted blocks alike."""
        with self._lock:
            self.deleted_prefixes.append(prefix)
            if self.fail_deletes:
                raise StorageUnavailable("fake blob storage: delete unavailable")
            names = sorted({n for n in (*self.committed, *self.staged) if n.startswith(prefix)})
            for name in names:
                self.committed.pop(name, None)
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
