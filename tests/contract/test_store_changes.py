"""The RegistrationStore contract, the change log: newest first, kept per owner, name and version."""

from __future__ import annotations

from datetime import timedelta

from registry.ports import RegistrationStore
from tests.contract.records import registration
from tests.fakes import T0


def test_changes_read_newest_first(store: RegistrationStore) -> None:
    r = store.insert(registration())
    for minute in (0, 2, 1):  # recorded out of order: the time orders them
        r.updated_at = T0 + timedelta(minutes=minute)
        store.record_change(r, {"by": "alice", "minute": minute})

    assert [c["minute"] for c in store.changes(r)] == [2, 1, 0]


def test_two_changes_at_the_same_moment_are_both_kept(store: RegistrationStore) -> None:
    r = store.insert(registration())
    store.record_change(r, {"changed": ["private"]})
    store.record_change(r, {"changed": ["description"]})

    assert sorted(c["changed"][0] for c in store.changes(r)) == ["description", "private"]


def test_changes_are_kept_per_owner_name_and_version_across_registrations(store: RegistrationStore) -> None:
    first = store.insert(registration())
    store.record_change(first, {"n": 1})
    store.record_change(registration(version="2.0"), {"n": 2})
    store.record_change(registration("bob"), {"n": 3})
    store.delete(first)
    again = store.insert(registration(now=T0 + timedelta(hours=1)))
    store.record_change(again, {"n": 4})

    assert [c["n"] for c in store.changes(again)] == [4, 1]
    assert [c["n"] for c in store.changes(registration(version="2.0"))] == [2]
    assert [c["n"] for c in store.changes(registration("bob"))] == [3]
    assert store.changes(registration(version="3.0")) == []
