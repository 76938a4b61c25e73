"""Admission's in-progress count: cached per owner, and read once however many requests arrive
together."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from registry.services.limits import Admission


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_requests_of_one_owner_arriving_together_read_the_count_once() -> None:
    admission = Admission(count_ttl_seconds=2.0)
    reads: list[str] = []
    reading = threading.Event()
    release = threading.Event()

    def count() -> int:
        reads.append("read")
        reading.set()
        assert release.wait(5)
        return 3

    with ThreadPoolExecutor(16) as pool:
        first = pool.submit(admission.in_progress, "alice", count)
        assert reading.wait(5)
        others = [pool.submit(admission.in_progress, "alice", count) for _ in range(15)]
        release.set()
        assert [f.result(5) for f in [first, *others]] == [3] * 16
    assert reads == ["read"]


def test_other_owners_do_not_wait_for_one_owners_count() -> None:
    admission = Admission(count_ttl_seconds=2.0)
    release = threading.Event()

    def slow() -> int:
        assert release.wait(5)
        return 1

    with ThreadPoolExecutor(2) as pool:
        alice = pool.submit(admission.in_progress, "alice", slow)
        assert admission.in_progress("bob", lambda: 7) == 7  # while alice's count is still out
        release.set()
        assert alice.result(5) == 1


def test_a_failed_count_is_not_cached_and_the_next_request_counts_again() -> None:
    admission = Admission(count_ttl_seconds=2.0)

    def broken() -> int:
        raise ConnectionError("storage down")

    with pytest.raises(ConnectionError):
        admission.in_progress("alice", broken)
    assert admission.in_progress("alice", lambda: 4) == 4


def test_the_count_is_read_afresh_after_its_ttl_and_acceptances_add_to_it_meanwhile() -> None:
    clock = Clock()
    admission = Admission(count_ttl_seconds=2.0, clock=clock)
    assert admission.in_progress("alice", lambda: 1) == 1
    admission.accepted("alice")
    assert admission.in_progress("alice", lambda: 99) == 2  # cached, plus the one accepted
    clock.now = 2.5
    assert admission.in_progress("alice", lambda: 5) == 5
