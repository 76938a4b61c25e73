"""A closed-loop load driver: N operations over C threads, each thread with its own clients."""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

S = TypeVar("S")


@dataclass
class LoadResult:
    operations: int
    seconds: float
    errors: Counter[str] = field(default_factory=Counter)
    samples: list[str] = field(default_factory=list)  # a few error texts, for the report

    @property
    def succeeded(self) -> int:
        return self.operations - sum(self.errors.values())

    @property
    def rate(self) -> float:
        """Successful operations per second."""
        return self.succeeded / self.seconds if self.seconds > 0 else 0.0


class Failure(Exception):
    """An operation's answer was not the expected one (a label, and a sample text)."""

    def __init__(self, label: str, sample: str = "") -> None:
        super().__init__(label)
        self.label = label
        self.sample = sample


@dataclass
class Load(Generic[S]):
    """`operation(session, index)` for index in range(count), over `concurrency` threads.

    Sessions (HTTP or SDK clients) are opened before the clock starts and closed after it stops.
    """

    open_session: Callable[[], S]
    operation: Callable[[S, int], None]
    close_session: Callable[[S], None]

    def run(self, count: int, concurrency: int, first_index: int = 0) -> LoadResult:
        sessions = [self.open_session() for _ in range(concurrency)]
        indexes = itertools.count(first_index)
        last = first_index + count
        lock = threading.Lock()
        result = LoadResult(count, 0.0)
        start = threading.Barrier(concurrency + 1)

        def work(session: S) -> None:
            start.wait()
            while True:
                with lock:
                    index = next(indexes)
                if index >= last:
                    return
                try:
                    self.operation(session, index)
                except Exception as error:
                    label, sample = (
                        (error.label, error.sample)
                        if isinstance(error, Failure)
                        else (type(error).__name__, str(error)[:300])
                    )
                    with lock:
                        result.errors[label] += 1
                        if len(result.samples) < 3:
                            result.samples.append(f"{label}: {sample}")

        threads = [threading.Thread(target=work, args=(s,), name=f"load-{i}") for i, s in enumerate(sessions)]
        try:
            for thread in threads:
                thread.start()
            start.wait()
            began = time.perf_counter()
            for thread in threads:
                thread.join()
            result.seconds = time.perf_counter() - began
        finally:
            for session in sessions:
                self.close_session(session)
        return result
