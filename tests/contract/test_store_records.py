"""The RegistrationStore contract, records: the same tests against the fake and the Table adapter."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest

from registry.domain.errors import AlreadyExists, ConcurrentUpdate, RecordTooLarge
from registry.domain.vocabulary import State
from registry.ports import RegistrationStore
from tests.contract.records import registration
from tests.fakes import T0


def test_a_stored_record_reads_back_equal_and_with_an_etag(store: RegistrationStore) -> None:
    original = registration(input_languages=("PYTHON", "Go"), output_languages=("en",))
    original.parent = {"name": "gpt", "version": "2", "owner": "bob"}
    original.last_change = {"by": "alice", "changed": ["private"]}
    stored = store.insert(original)

    loaded = store.get("alice", "bert", "1.0")

    assert stored.etag
    assert loaded == original
    assert loaded is not None and loaded.etag == stored.etag
    assert store.get("alice", "bert", "2.0") is None
    assert store.get("bob", "bert", "1.0") is None


def test_inserting_a_taken_key_raises_already_exists_and_keeps_the_first(store: RegistrationStore) -> None:
    store.insert(registration(description="first"))

    with pytest.raises(AlreadyExists):
        store.insert(registration(description="second"))

    loaded = store.get("alice", "bert", "1.0")
    assert loaded is not None and loaded.description == "first"


def test_replace_writes_only_over_the_etag_it_read(store: RegistrationStore) -> None:
    store.insert(registration())
    mine, theirs = store.get("alice", "bert", "1.0"), store.get("alice", "bert", "1.0")
    assert mine is not None and theirs is not None
    read_etag = mine.etag

    mine.description = "mine"
    written = store.replace(mine)
    theirs.description = "theirs"
    with pytest.raises(ConcurrentUpdate):
        store.replace(theirs)

    assert written.etag and written.etag != read_etag
    loaded = store.get("alice", "bert", "1.0")
    assert loaded is not None and loaded.description == "mine" and loaded.etag == written.etag
    loaded.description = "again"
    assert store.replace(loaded).etag != written.etag  # the etag returned is the one to write with


def test_replacing_or_deleting_a_record_someone_deleted_is_a_concurrent_update(
    store: RegistrationStore,
) -> None:
    store.insert(registration())
    first, second = store.get("alice", "bert", "1.0"), store.get("alice", "bert", "1.0")
    assert first is not None and second is not None
    store.delete(first)

    with pytest.raises(ConcurrentUpdate):
        store.replace(second)
    with pytest.raises(ConcurrentUpdate):
        store.delete(second)
    assert store.get("alice", "bert", "1.0") is None


def test_delete_removes_only_the_record_it_read(store: RegistrationStore) -> None:
    store.insert(registration())
    store.insert(registration(version="2.0"))
    stale = store.get("alice", "bert", "1.0")
    assert stale is not None
    current = store.get("alice", "bert", "1.0")
    assert current is not None
    current.message = "moved on"
    store.replace(current)

    with pytest.raises(ConcurrentUpdate):
        store.delete(stale)
    store.delete(current)

    assert store.get("alice", "bert", "1.0") is None
    assert store.get("alice", "bert", "2.0") is not None


def test_in_state_finds_records_of_every_owner_in_that_state_once(store: RegistrationStore) -> None:
    # Languages give the records index rows beside them: those are not records.
    store.insert(registration("alice", "a", input_languages=("PYTHON", "JAVA")))
    store.insert(registration("bob", "b", output_languages=("en",)))
    store.insert(registration("bob", "c", finished=True))
    failed = registration("carol", "d")
    failed.fail(T0, "broken")
    store.insert(failed)

    def keys(state: State) -> list[tuple[str, str]]:
        return sorted((r.owner, r.name) for r in store.in_state(state))

    assert keys(State.IN_PROGRESS) == [("alice", "a"), ("bob", "b")]
    assert keys(State.FINISHED) == [("bob", "c")]
    assert keys(State.FAILED) == [("carol", "d")]
    assert keys(State.DELETING) == []


def test_in_state_quiet_since_keeps_only_records_without_progress_since(store: RegistrationStore) -> None:
    store.insert(registration(name="idle", now=T0))
    store.insert(registration(name="busy", now=T0 + timedelta(minutes=10)))

    quiet = [r.name for r in store.in_state(State.IN_PROGRESS, quiet_since=T0 + timedelta(minutes=5))]

    assert quiet == ["idle"]


def test_everything_yields_each_record_once(store: RegistrationStore) -> None:
    names = [f"m{i}" for i in range(5)]
    for name in names:
        store.insert(registration(name=name, input_languages=("PYTHON", "RUST")))
    store.insert(registration("bob", "other"))

    assert sorted((r.owner, r.name) for r in store.everything()) == sorted(
        [("alice", n) for n in names] + [("bob", "other")]
    )


def test_count_in_progress_counts_the_owners_in_progress_records_up_to_the_cap(
    store: RegistrationStore,
) -> None:
    for i in range(3):
        store.insert(registration("alice", f"copying{i}", input_languages=("PYTHON", "C")))
    store.insert(registration("alice", "done", finished=True))
    store.insert(registration("bob", "copying"))

    assert store.count_in_progress("alice", 10) == 3
    assert store.count_in_progress("alice", 2) == 2
    assert store.count_in_progress("bob", 10) == 1
    assert store.count_in_progress("carol", 10) == 0


def test_a_record_over_one_mib_is_refused_as_too_large_and_nothing_is_stored(
    store: RegistrationStore,
) -> None:
    huge = registration()
    huge.sealed = os.urandom(1_100_000)  # incompressible, in numbered properties of 60 kB

    with pytest.raises(RecordTooLarge) as refused:
        store.insert(huge)

    assert refused.value.size > refused.value.limit == 1024 * 1024
    assert store.get("alice", "bert", "1.0") is None


def test_a_replace_over_one_mib_is_refused_and_the_record_stays_as_it_was(store: RegistrationStore) -> None:
    store.insert(registration(description="small"))
    loaded = store.get("alice", "bert", "1.0")
    assert loaded is not None
    loaded.description = "large"
    loaded.sealed = os.urandom(1_100_000)

    with pytest.raises(RecordTooLarge):
        store.replace(loaded)

    current = store.get("alice", "bert", "1.0")
    assert current is not None and current.description == "small" and current.sealed == b""
