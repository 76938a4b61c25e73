"""Admission control: a per-caller request rate, and the owner's registrations in progress.

Both are kept per instance, in memory: a rate of R across N instances admits at most N x R, and
the in-progress count is re-read at most every `count_ttl_seconds` per owner (so an owner can
overshoot the quota by what the rate limit lets through in that time). Exactness would cost a
storage round-trip per request on the registration path; this costs none in the common case.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, wait


class Admission:
    def __init__(
        self,
        windows: Sequence[tuple[int, float]] = (),
        *,
        count_ttl_seconds: float = 2.0,
        count_wait_seconds: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        max_callers: int = 100_000,
    ) -> None:
        self._windows = tuple(windows)
        self._longest = max((seconds for _, seconds in self._windows), default=0.0)
        self._clock = clock
        self._lock = threading.Lock()
        self._requests: dict[str, deque[float]] = {}
        self._counts: dict[str, tuple[float, int]] = {}
        self._count_ttl = count_ttl_seconds
        self._counting: dict[str, Future[int]] = {}  # owners whose count is being read
        self._count_wait = count_wait_seconds
        self._max_callers = max_callers

    def retry_after(self, caller: str) -> int | None:
        """Seconds to wait if this request is over a rate window; otherwise count it and None."""
        if not self._windows:
            return None
        now = self._clock()
        with self._lock:
            times = self._requests.setdefault(caller, deque())
            while times and times[0] <= now - self._longest:
                times.popleft()
            for limit, seconds in self._windows:
                inside = [t for t in times if t > now - seconds]
                if len(inside) >= limit:
                    return max(1, math.ceil(inside[-limit] + seconds - now))
            times.append(now)
            if len(self._requests) > self._max_callers:  # forget the quietest callers
                for key in [k for k, v in self._requests.items() if not v][: len(self._requests) // 2]:
                    del self._requests[key]
        return None

    def in_progress(self, owner: str, count: Callable[[], int]) -> int:
        """The owner's registrations in progress, counted afresh at most every few seconds.

        Single-flight: requests of one owner that arrive together share one read of the count,
        its value or its error, instead of each sending its own. A failed read is not cached, and
        a request that waited `count_wait_seconds` for a read that never came reads for itself."""
        now = self._clock()
        with self._lock:
            cached = self._counts.get(owner)
            if cached is not None and now - cached[0] < self._count_ttl:
                return cached[1]
            flight = self._counting.get(owner)
            leading = flight is None
            if flight is None:
                flight = self._counting[owner] = Future()
        if not leading:
            done, _ = wait([flight], timeout=self._count_wait)
            if done:
                return flight.result()
            self._land(owner, flight)  # a stuck read: the next request leads a new one
            return count()
        try:
            value = count()
        except BaseException as error:
            flight.set_exception(error)
            raise
        else:
            flight.set_result(value)
            with self._lock:
                self._counts[owner] = (self._clock(), value)
            return value
        finally:
            self._land(owner, flight)

    def _land(self, owner: str, flight: Future[int]) -> None:
        """The owner's requests stop joining this read (a newer one is left alone)."""
        with self._lock:
            if self._counting.get(owner) is flight:
                del self._counting[owner]

    def accepted(self, owner: str) -> None:
        """One more registration in progress (until the count is read afresh)."""
        with self._lock:
            cached = self._counts.get(owner)
            if cached is not None:
                self._counts[owner] = (cached[0], cached[1] + 1)
