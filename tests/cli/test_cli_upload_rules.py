"""Unit tests: block planning, the rate cap, and the links kept for replays."""

from __future__ import annotations

import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from registry.cli.links import MAX_LIFETIME, MIN_LIFETIME, LinkStore, SavedLinks, link_lifetime
from registry.cli.modelspec import LocalFile
from registry.cli.upload import MAX_BLOCKS, MIB, RateLimit, block_ids, block_size_for, parse_rate

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "rate"),
    [("20M", 20 * MIB), ("500k", 500 * 1024), ("1.5G", 1.5 * 1024 * MIB), ("64", 64), ("8MB/s", 8 * MIB)],
)
def test_a_rate_is_bytes_a_second_with_binary_suffixes(text: str, rate: float) -> None:
    assert parse_rate(text) == rate


@pytest.mark.parametrize("text", ["fast", "-1M", "0", ""])
def test_a_rate_that_is_not_a_positive_number_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="rate"):
        parse_rate(text)


def test_the_block_size_grows_only_when_a_file_would_need_over_50000_blocks() -> None:
    assert block_size_for(10 * 1024 * MIB, 8 * MIB) == 8 * MIB
    huge = 1024 * 1024 * MIB  # 1 TiB
    size = block_size_for(huge, 8 * MIB)
    assert size > 8 * MIB and -(-huge // size) <= MAX_BLOCKS


def test_block_ids_are_equal_length_and_change_with_the_files_size_mtime_and_block_size(
    tmp_path: Path,
) -> None:
    local = LocalFile("w.bin", tmp_path / "w.bin", 20 * MIB, 111)
    ids = block_ids(local, 8 * MIB)
    assert len(ids) == 3 and len(set(ids)) == 3 and len({len(i) for i in ids}) == 1
    assert block_ids(local, 8 * MIB) == ids  # a re-run finds the blocks it staged
    assert not set(ids) & set(block_ids(LocalFile("w.bin", local.path, 20 * MIB, 222), 8 * MIB))
    assert not set(ids) & set(block_ids(LocalFile("w.bin", local.path, 20 * MIB + 1, 111), 8 * MIB))
    assert not set(ids) & set(block_ids(local, 4 * MIB))


def test_the_rate_cap_paces_sends_across_threads() -> None:
    clock = [0.0]
    sleeps: list[float] = []
    limit = RateLimit(10.0, clock=lambda: clock[0], sleep=sleeps.append)
    for _ in range(3):
        limit.take(10)
    assert sleeps == [1.0, 2.0]  # the first goes at once, then one second per 10 bytes
    RateLimit(None, sleep=sleeps.append).take(10**9)  # no cap: no wait
    assert len(sleeps) == 2


def test_links_live_long_enough_for_the_copy_and_no_longer_than_a_delegation_key() -> None:
    assert link_lifetime(0) == MIN_LIFETIME
    assert link_lifetime(100 * 1024 * MIB) > MIN_LIFETIME
    assert link_lifetime(10**15) == MAX_LIFETIME


def test_saved_links_are_readable_by_the_user_alone_and_expired_ones_are_dropped(tmp_path: Path) -> None:
    files = {"w.bin": {"url": "https://a/w.bin?sig", "size": 3, "content_md5": "x"}}
    store = LinkStore(tmp_path / "state", now=NOW)
    store.save("old", SavedLinks(NOW - timedelta(minutes=1), files))
    store.save("new", SavedLinks(NOW + timedelta(hours=2), files))
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert store.load("new") == SavedLinks(NOW + timedelta(hours=2), files)
    store.save("other", SavedLinks(NOW + timedelta(hours=1), files))
    assert store.load("old") is None  # dropped on the next save
    assert store.load("missing") is None


def test_saved_links_are_reused_only_for_the_same_files_with_time_to_spare() -> None:
    links = SavedLinks(NOW + timedelta(hours=2), {"w.bin": {"url": "u", "size": 3, "content_md5": "x"}})
    assert links.fits({"w.bin": (3, "x")}, NOW)
    assert not links.fits({"w.bin": (3, "y")}, NOW)  # changed content
    assert not links.fits({"w.bin": (3, "x"), "new.txt": (1, "z")}, NOW)  # another file
    assert not links.fits({"w.bin": (3, "x")}, NOW + timedelta(hours=1, minutes=45))  # about to expire
