"""The fakes keep the promises the services rely on (so that the service tests mean something)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from registry.domain.errors import AlreadyExists, ConcurrentUpdate, SourceError, StorageUnavailable
from registry.domain.jobs import CopyJob
from registry.domain.model import FileProgress, Registration
from registry.domain.vocabulary import State
from tests.fakes import FakeBlobCopier, FakeJobQueue, FakeRegistrationStore

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def registration(name: str = "m") -> Registration:
    return Registration(
        owner="o",
        name=name,
        version="1",
        owner_name="o",
        registration_id="r",
        state=State.IN_PROGRESS,
        message="",
        private=True,
        model_type="ENCODER",
        description="",
        body_digest="d",
        document={"a": [1]},
        file_names=["f"],
        sealed=b"s",
        created_at=T0,
        updated_at=T0,
        last_progress_at=T0,
    )


def test_store_insert_twice_is_already_exists() -> None:
    store = FakeRegistrationStore()
    store.insert(registration())
    with pytest.raises(AlreadyExists):
        store.insert(registration())


def test_store_replace_with_a_stale_etag_is_a_concurrent_update() -> None:
    store = FakeRegistrationStore()
    mine = store.insert(registration())
    theirs = store.get("o", "m", "1")
    assert theirs is not None
    store.replace(theirs)
    with pytest.raises(ConcurrentUpdate):
        store.replace(mine)
    with pytest.raises(ConcurrentUpdate):
        store.delete(mine)
    store.delete(theirs)
    assert store.get("o", "m", "1") is None
    with pytest.raises(ConcurrentUpdate):
        store.replace(theirs)


def test_store_copies_records_in_and_out() -> None:
    store = FakeRegistrationStore()
    mine = store.insert(registration())
    mine.document["a"].append(2)
    read = store.get("o", "m", "1")
    assert read is not None
    assert read.document == {"a": [1]}
    read.document["a"].append(3)
    again = store.get("o", "m", "1")
    assert again is not None
    assert again.document == {"a": [1]}


def test_store_file_progress_has_etags_too() -> None:
    store = FakeRegistrationStore()
    reg = store.insert(registration())
    store.insert_files(reg, [FileProgress(index=0, target="f")])
    with pytest.raises(AlreadyExists):
        store.insert_files(reg, [FileProgress(index=0, target="f")])
    first, second = store.files(reg)[0], store.files(reg)[0]
    first.bytes_copied = 5
    store.replace_file(reg, first)
    with pytest.raises(ConcurrentUpdate):
        store.replace_file(reg, second)
    assert store.files(reg)[0].bytes_copied == 5


def test_store_can_be_made_unavailable() -> None:
    store = FakeRegistrationStore()
    store.unavailable.add("get")
    with pytest.raises(StorageUnavailable):
        store.get("o", "m", "1")


def test_queue_records_jobs_and_can_fail() -> None:
    queue = FakeJobQueue()
    queue.send(CopyJob("o", "m", "1", "r"), delay_seconds=3)
    assert queue.sent[0].job == CopyJob("o", "m", "1", "r")
    assert queue.sent[0].delay_seconds == 3
    queue.failing = True
    with pytest.raises(StorageUnavailable):
        queue.send(CopyJob("o", "m", "1", "r"))


def test_copier_stages_real_byte_ranges_and_commits_them() -> None:
    copier = FakeBlobCopier()
    etag = copier.put_source("https://a/x?sig=1", b"0123456789")
    assert copier.source_info("https://a/x?sig=1").etag == etag
    copier.stage_block("p", "b1", "https://a/x?sig=1", 5, 5)
    copier.stage_block("p", "b0", "https://a/x?sig=1", 0, 5)
    assert copier.staged_blocks("p") == {"b0": 5, "b1": 5}
    assert copier.committed_size("p", ["b0", "b1"]) is None
    assert copier.commit("p", ["b0", "b1"], "").size == 10
    assert copier.blob("p") == b"0123456789"
    assert copier.staged_blocks("p") == {}
    assert copier.committed_size("p", ["b0", "b1"]) == 10
    assert copier.committed_size("p", ["b0"]) is None
    with pytest.raises(ValueError, match="InvalidBlockList"):
        copier.commit("q", ["missing"], "")
    assert copier.put_source("https://a/x?sig=1", b"new") != etag


def test_copier_raises_source_errors_when_told() -> None:
    copier = FakeBlobCopier()
    with pytest.raises(SourceError) as missing:
        copier.source_info("https://a/none")
    assert missing.value.permanent
    copier.put_source("https://a/x", b"abc")
    copier.fail("https://a/x", permanent=False)
    with pytest.raises(SourceError) as transient:
        copier.stage_block("p", "b0", "https://a/x", 0, 3)
    assert not transient.value.permanent
    with pytest.raises(SourceError, match="416"):
        FakeBlobCopier(sources=copier.sources).stage_block("p", "b0", "https://a/x", 2, 5)
