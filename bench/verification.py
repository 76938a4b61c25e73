"""The worker's verification phase, timed from the bench side through proxies of its ports.

The worker first copies every file of a registration (Put Block From URL, then Put Block List:
`BlobCopier.commit`), and only then verifies them, one after another: it reads each back in chunks
(`ModelFiles.read_range`, one read ahead), hashes it (SHA-256), and records the digest on the blob
(`ModelFiles.set_sha256`). After the last file it records the manifest revision and ends the
registration Finished. The proxies here note when those calls begin or end, so that the phases can
be told apart with no hook in the registry; they add one clock read per call.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta

from registry.domain.model import SourceInfo
from registry.ports import BlobCopier, ModelFiles
from registry.services.dependencies import Dependencies


@dataclass
class FileHashing:
    first_read: float  # time.perf_counter() when its first read_range was called
    bytes_read: int = 0
    reads: int = 0
    hashed: float | None = None  # when its set_sha256 returned


@dataclass
class Timeline:
    """What the proxies saw, in time.perf_counter() seconds. `on_hashing_start` runs once, in the
    calling thread, just before the first read of the first file is sent; `on_file_hashed(n)` after
    the n-th digest was recorded."""

    on_hashing_start: Callable[[], None] | None = None
    on_file_hashed: Callable[[int], None] | None = None
    commits: list[float] = field(default_factory=list)  # when each Put Block List returned
    files: dict[str, FileHashing] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def committed(self) -> None:
        with self._lock:
            self.commits.append(time.perf_counter())

    def reading(self, path: str, length: int) -> None:
        with self._lock:
            first = not self.files
            if first and self.on_hashing_start is not None:
                self.on_hashing_start()
            file = self.files.setdefault(path, FileHashing(time.perf_counter()))
            file.bytes_read += length
            file.reads += 1

    def hashed(self, path: str) -> None:
        with self._lock:
            now = time.perf_counter()
            self.files.setdefault(path, FileHashing(now)).hashed = now  # read nothing: a known digest
            count = sum(1 for f in self.files.values() if f.hashed is not None)
            if self.on_file_hashed is not None:
                self.on_file_hashed(count)

    # -- the phases --

    @property
    def last_commit(self) -> float:
        if not self.commits:
            raise RuntimeError("the worker committed no file")
        return max(self.commits)

    @property
    def hashing_began(self) -> float:
        return min(f.first_read for f in self._hashed_files())

    @property
    def hashing_ended(self) -> float:
        return max(f.hashed or 0.0 for f in self._hashed_files())

    @property
    def hashing_seconds(self) -> float:
        """Wall clock from the first read of the first file to the last digest recorded."""
        return self.hashing_ended - self.hashing_began

    @property
    def per_file_seconds(self) -> float:
        """Each file's first read to its digest recorded, summed (no gaps between files)."""
        return sum((f.hashed or 0.0) - f.first_read for f in self._hashed_files())

    @property
    def bytes_read(self) -> int:
        return sum(f.bytes_read for f in self.files.values())

    @property
    def hashing_after_last_commit(self) -> bool:
        """The phases did not overlap: every file was committed before the first was read back."""
        return self.hashing_began >= self.last_commit

    def _hashed_files(self) -> list[FileHashing]:
        files = list(self.files.values())
        if not files or any(f.hashed is None for f in files):
            raise RuntimeError("the worker did not record a digest for every file it read back")
        return files


class TimedFiles:
    """ModelFiles, noting the reads back and the digests recorded."""

    def __init__(self, inner: ModelFiles, timeline: Timeline) -> None:
        self._inner = inner
        self._timeline = timeline

    def stat(self, path: str) -> SourceInfo | None:
        return self._inner.stat(path)

    def read(self, path: str, max_bytes: int) -> bytes | None:
        return self._inner.read(path, max_bytes)

    def read_range(self, path: str, offset: int, length: int, etag: str) -> bytes:
        self._timeline.reading(path, length)
        return self._inner.read_range(path, offset, length, etag)

    def set_sha256(self, path: str, sha256: str, etag: str) -> str:
        written = self._inner.set_sha256(path, sha256, etag)
        self._timeline.hashed(path)
        return written

    def delete(self, path: str) -> None:
        self._inner.delete(path)

    def read_url(self, path: str, ttl: timedelta) -> str:
        return self._inner.read_url(path, ttl)

    def delete_prefix(self, prefix: str) -> int:
        return self._inner.delete_prefix(prefix)


class TimedCopier:
    """BlobCopier, noting when each file's block list was committed."""

    def __init__(self, inner: BlobCopier, timeline: Timeline) -> None:
        self._inner = inner
        self._timeline = timeline

    def source_info(self, url: str) -> SourceInfo:
        return self._inner.source_info(url)

    def staged_blocks(self, path: str) -> Mapping[str, int]:
        return self._inner.staged_blocks(path)

    def committed_size(self, path: str, block_ids: list[str]) -> int | None:
        return self._inner.committed_size(path, block_ids)

    def stage_block(self, path: str, block_id: str, url: str, offset: int, length: int) -> None:
        self._inner.stage_block(path, block_id, url, offset, length)

    def commit(self, path: str, block_ids: list[str], content_md5: str) -> SourceInfo:
        committed = self._inner.commit(path, block_ids, content_md5)
        self._timeline.committed()
        return committed


def timed(deps: Dependencies, timeline: Timeline) -> Dependencies:
    """The same dependencies, with the worker's two blob ports seen through the timing proxies."""
    return dataclasses.replace(
        deps, files=TimedFiles(deps.files, timeline), copier=TimedCopier(deps.copier, timeline)
    )
