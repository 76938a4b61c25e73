"""The per-instance listing cache: rows in key order from shared chunks, each read once per TTL."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from registry.web.cache import PublicListingCache


@dataclass(frozen=True)
class Row:
    sort_key: str


class Source:
    """A key-ordered listing that counts the rows it serves (what a table read would cost)."""

    def __init__(self, keys: list[str]) -> None:
        self.keys = sorted(keys)
        self.rows_read = 0
        self.reads = 0

    def fetch(self, after: str) -> Iterator[Row]:
        self.reads += 1
        for key in self.keys:
            if key > after:
                self.rows_read += 1
                yield Row(key)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


KEYS = [f"k{i:04d}" for i in range(1000)]


def first(cache: PublicListingCache[Row], source: Source, after: str, n: int) -> list[str]:
    rows = cache.rows("all", after, source.fetch)
    return [next(rows).sort_key for _ in range(n)]


def test_rows_come_in_key_order_after_the_given_key_across_chunk_boundaries() -> None:
    source, cache = Source(KEYS), PublicListingCache[Row](10, chunk_size=100, clock=Clock())
    assert list(r.sort_key for r in cache.rows("all", "", source.fetch)) == KEYS
    assert first(cache, source, "k0149", 3) == ["k0150", "k0151", "k0152"]
    assert list(r.sort_key for r in cache.rows("all", "k0998", source.fetch)) == ["k0999"]


def test_repeated_views_read_the_store_once_per_ttl() -> None:
    clock = Clock()
    source, cache = Source(KEYS), PublicListingCache[Row](10, chunk_size=100, clock=clock)
    for _ in range(50):
        assert first(cache, source, "", 20) == KEYS[:20]
    assert source.reads == 1
    assert source.rows_read <= 100
    clock.now = 10.5
    first(cache, source, "", 20)
    assert source.reads == 2


def test_a_page_starting_inside_a_cached_chunk_reuses_it() -> None:
    """Callers with own models interleaved start the public part of page 2 at different keys."""
    source, cache = Source(KEYS), PublicListingCache[Row](10, chunk_size=100, clock=Clock())
    first(cache, source, "", 20)
    for start in ("k0017", "k0019", "k0020", "k0042"):
        first(cache, source, start, 20)
    assert source.reads == 1


def test_listings_with_different_filters_never_share_rows() -> None:
    cache = PublicListingCache[Row](10, chunk_size=100, clock=Clock())
    a, b = Source(["a1", "a2"]), Source(["b1"])
    assert [r.sort_key for r in cache.rows("filters-a", "", a.fetch)] == ["a1", "a2"]
    assert [r.sort_key for r in cache.rows("filters-b", "", b.fetch)] == ["b1"]


def test_clear_makes_the_next_view_read_fresh_rows() -> None:
    source, cache = Source(["a", "b"]), PublicListingCache[Row](10, clock=Clock())
    assert [r.sort_key for r in cache.rows("all", "", source.fetch)] == ["a", "b"]
    source.keys.append("c")
    assert [r.sort_key for r in cache.rows("all", "", source.fetch)] == ["a", "b"]  # cached
    cache.clear()
    assert [r.sort_key for r in cache.rows("all", "", source.fetch)] == ["a", "b", "c"]


def test_a_ttl_of_zero_reads_through_lazily() -> None:
    source, cache = Source(KEYS), PublicListingCache[Row](0, clock=Clock())
    assert first(cache, source, "", 5) == KEYS[:5]
    assert source.rows_read == 5


def test_the_cache_holds_at_most_max_chunks() -> None:
    source, cache = Source(KEYS), PublicListingCache[Row](10, chunk_size=10, max_chunks=5, clock=Clock())
    list(cache.rows("all", "", source.fetch))  # 100 chunks loaded in turn
    assert source.reads == 101
    reads = source.reads
    first(cache, source, "k0995", 3)  # the latest chunks are still there
    assert source.reads == reads
    first(cache, source, "", 3)  # the earliest were evicted
    assert source.reads == reads + 1
