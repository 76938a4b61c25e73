"""The RegistrationStore contract, events: the outbox is written with the record or not at all,
and the history keeps each event once, newest first, per owner, name and version."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from registry.domain.errors import ConcurrentUpdate, RecordTooLarge
from registry.domain.events import Event, EventType
from registry.ports import RegistrationStore
from tests.contract.records import registration
from tests.fakes import T0


def _event(
    minute: int, kind: EventType = EventType.UPDATED, *, name: str = "bert", owner: str = "alice"
) -> Event:
    return Event(kind, owner, name, "1.0", T0 + timedelta(minutes=minute), f"change-{minute}", public=True)


def test_an_inserted_record_brings_its_events_into_the_outbox_oldest_first(store: RegistrationStore) -> None:
    r = registration()
    r.record(EventType.REGISTERED, T0 + timedelta(seconds=2))
    r.record(
        EventType.UPDATED, T0 + timedelta(seconds=1), {"changes": {"private": {"from": True, "to": False}}}
    )
    stored = store.insert(r)

    pending = store.pending_events("alice")
    assert [e.type for e in pending] == [EventType.UPDATED, EventType.REGISTERED]
    assert pending[0].data["changes"] == {"private": {"from": True, "to": False}}
    assert stored.events == []  # written: a later write does not write them again
    assert list(store.owners_with_pending_events()) == ["alice"]


def test_a_replace_that_loses_the_race_writes_none_of_its_events(store: RegistrationStore) -> None:
    r = store.insert(registration())
    stale = store.get("alice", "bert", "1.0")
    assert stale is not None
    store.replace(r)
    stale.record(EventType.UPDATED, T0)
    with pytest.raises(ConcurrentUpdate):
        store.replace(stale)
    assert store.pending_events("alice") == []


def test_a_record_too_large_to_store_writes_none_of_its_events(store: RegistrationStore) -> None:
    r = registration()
    r.document["model_metainfo"]["huge"] = random.Random(0).randbytes(1_200_000).hex()  # incompressible
    r.record(EventType.REGISTERED, T0)
    with pytest.raises(RecordTooLarge):
        store.insert(r)
    assert store.pending_events("alice") == []


def test_delivered_events_leave_the_outbox_and_delivering_twice_is_harmless(store: RegistrationStore) -> None:
    r = registration()
    first = r.record(EventType.REGISTERED, T0)
    second = r.record(EventType.FILES_REPLACED, T0 + timedelta(seconds=1))
    store.insert(r)
    store.delivered("alice", first)
    store.delivered("alice", first)
    assert store.pending_events("alice") == [second]
    store.delivered("alice", second)
    assert list(store.owners_with_pending_events()) == []


def test_a_record_deleted_with_its_events_leaves_nothing_pending(store: RegistrationStore) -> None:
    r = registration()
    accepted = r.record(EventType.REGISTERED, T0)
    stored = store.insert(r)
    store.delete(stored, unrecord=[accepted])
    assert store.get("alice", "bert", "1.0") is None
    assert store.pending_events("alice") == []


def test_deleting_with_an_event_already_delivered_fails_and_keeps_the_record(
    store: RegistrationStore,
) -> None:
    r = registration()
    accepted = r.record(EventType.REGISTERED, T0)
    stored = store.insert(r)
    store.delivered("alice", accepted)
    with pytest.raises(ConcurrentUpdate):
        store.delete(stored, unrecord=[accepted])
    assert store.get("alice", "bert", "1.0") is not None  # it was heard of: it stays, true


def test_history_reads_newest_first_and_keeps_an_event_recorded_twice_once(store: RegistrationStore) -> None:
    events = [_event(0), _event(2), _event(1)]
    store.record_history(events)
    store.record_history(events[:1])
    read = store.history(registration().model_key, 10)
    assert [e.time for e in read] == [T0 + timedelta(minutes=m) for m in (2, 1, 0)]
    assert read[0] == events[1]


def test_history_pages_follow_the_last_event_read(store: RegistrationStore) -> None:
    store.record_history([_event(m) for m in range(7)])
    key = registration().model_key
    first = store.history(key, 3)
    rest = store.history(key, 10, after=(first[-1].time, first[-1].id))
    assert [e.change for e in first + rest] == [f"change-{m}" for m in range(6, -1, -1)]


def test_history_is_kept_per_owner_name_and_version(store: RegistrationStore) -> None:
    store.record_history([_event(1), _event(2, name="gpt"), _event(3, owner="bob")])
    assert [e.change for e in store.history(registration().model_key, 10)] == ["change-1"]
    assert [e.change for e in store.history(registration("bob").model_key, 10)] == ["change-3"]
    assert store.history(registration(version="3.0").model_key, 10) == []
