"""Admission's in-progress count: cached per owner, and read once however many requests arrive
together."""

from __future__ import annotations

import threading
import time
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


def test_a_failed_read_fails_every_request_that_waited_for_it_without_reading_again() -> None:
    admission = Admission(count_ttl_seconds=2.0)
    reads: list[str] = []
    reading = threading.Event()
    release = threading.Event()

    def broken() -> int:
        reads.append("read")
        reading.set()
        assert release.wait(5)
        raise ConnectionError("storage down")

    with ThreadPoolExecutor(8) as pool:
        first = pool.submit(admission.in_progress, "alice", broken)
        assert reading.wait(5)
        others = [pool.submit(admission.in_progress, "alice", broken) for _ in range(7)]
        time.sleep(0.1)  # they are all waiting for the first read
        release.set()
        for future in [first, *others]:
            with pytest.raises(ConnectionError):
                future.result(5)
    assert reads == ["read"]  # an outage costs one read's wait, not one per request in turn


def test_a_read_slower_than_the_ttl_still_answers_every_request_that_waited_for_it() -> None:
    admission = Admission(count_ttl_seconds=0.05)
    reads: list[str] = []
    reading = threading.Event()

    def slow() -> int:
        reads.append("read")
        reading.set()
        time.sleep(0.2)  # longer than the TTL: the value is stale by the time it lands
        return 2

    with ThreadPoolExecutor(8) as pool:
        first = pool.submit(admission.in_progress, "alice", slow)
        assert reading.wait(5)
        others = [pool.submit(admission.in_progress, "alice", slow) for _ in range(7)]
        assert [f.result(5) for f in [first, *others]] == [2] * 8
    assert reads == ["read"]


def test_requests_stop_waiting_for_a_read_that_never_returns_and_read_for_themselves() -> None:
    admission = Admission(count_ttl_seconds=2.0, count_wait_seconds=0.1)
    stuck = threading.Event()

    def hangs() -> int:
        assert stuck.wait(5)
        return 1

    with ThreadPoolExecutor(1) as pool:
        leader = pool.submit(admission.in_progress, "alice", hangs)
        time.sleep(0.05)
        assert admission.in_progress("alice", lambda: 3) == 3
        # The stuck read no longer holds the owner's requests: the next one leads a read at once.
        started = time.monotonic()
        assert admission.in_progress("alice", lambda: 4) == 4
        assert time.monotonic() - started < 0.1
        stuck.set()
        assert leader.result(5) == 1
