"""A per-instance cache of the public catalog's rows, in chunks that expire after a few seconds.

The public catalog is one table partition that every listing reads; Azure serves about 2,000
entities a second from one partition (docs/catalog-scale.md). Without a cache each view of a
list costs a page of entities from that partition; with it, each instance reads a chunk of
rows at most once per TTL, however many people view the pages it covers.

Chunks are keyed by the listing's filters and the key they start after, and a chunk serves any
`after` that falls inside it: pages that start anywhere (a caller's own models shift where the
public part of each page begins) share the same chunks.
"""

from __future__ import annotations

import bisect
import itertools
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar


class Keyed(Protocol):
    @property
    def sort_key(self) -> str: ...


T = TypeVar("T", bound=Keyed)


@dataclass(frozen=True)
class _Chunk(Generic[T]):
    after: str  # the chunk holds the rows whose keys follow this one...
    rows: tuple[T, ...]
    complete: bool  # ...up to the end of the list, if complete; else up to its last row
    expires: float

    @property
    def end(self) -> str:
        return self.rows[-1].sort_key if self.rows else self.after

    def covers(self, after: str) -> bool:
        return self.after <= after and (self.complete or after < self.end)


class PublicListingCache(Generic[T]):
    """Rows of a key-ordered listing, fetched `chunk_size` at a time and kept for `ttl_seconds`."""

    def __init__(
        self,
        ttl_seconds: float,
        chunk_size: int = 200,
        max_chunks: int = 128,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = ttl_seconds
        self.chunk_size = chunk_size
        self.max_chunks = max_chunks
        self._clock = clock
        self._lock = threading.Lock()
        # listing (its filters) -> chunks sorted by `after`; and every chunk in insertion order
        self._chunks: dict[str, list[_Chunk[T]]] = {}
        self._order: OrderedDict[tuple[str, str], None] = OrderedDict()
        self.loads = 0  # chunks fetched from the store: what the cache saves is visible

    def rows(self, listing: str, after: str, fetch: Callable[[str], Iterator[T]]) -> Iterator[T]:
        """The listing's rows after `after`, in key order; `fetch(start)` reads the store's."""
        if self.ttl <= 0:  # no cache: read what the page needs, as without one
            yield from fetch(after)
            return
        while True:
            chunk = self._find(listing, after) or self._load(listing, after, fetch)
            for row in chunk.rows:
                if row.sort_key > after:
                    yield row
            if chunk.complete or not chunk.rows:
                return
            after = chunk.end

    def clear(self) -> None:
        with self._lock:
            self._chunks.clear()
            self._order.clear()

    def _find(self, listing: str, after: str) -> _Chunk[T] | None:
        now = self._clock()
        with self._lock:
            chunks = self._chunks.get(listing, [])
            at = bisect.bisect_right([c.after for c in chunks], after)
            for chunk in reversed(chunks[:at]):  # the nearest starts first: they cover the most
                if chunk.expires > now and chunk.covers(after):
                    return chunk
        return None

    def _load(self, listing: str, after: str, fetch: Callable[[str], Iterator[T]]) -> _Chunk[T]:
        rows = tuple(itertools.islice(fetch(after), self.chunk_size))
        chunk = _Chunk(after, rows, len(rows) < self.chunk_size, self._clock() + self.ttl)
        with self._lock:
            self.loads += 1
            now = self._clock()
            chunks = []
            for other in self._chunks.get(listing, []):
                if other.expires > now and other.after != after:
                    chunks.append(other)
                else:
                    self._order.pop((listing, other.after), None)
            bisect.insort(chunks, chunk, key=lambda c: c.after)
            self._chunks[listing] = chunks
            self._order.pop((listing, after), None)
            self._order[(listing, after)] = None
            while len(self._order) > self.max_chunks:
                (old_listing, old_after), _ = self._order.popitem(last=False)
                kept = [c for c in self._chunks.get(old_listing, []) if c.after != old_after]
                if kept:
                    self._chunks[old_listing] = kept
                else:
                    self._chunks.pop(old_listing, None)
        return chunk
