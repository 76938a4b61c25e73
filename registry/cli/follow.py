"""Follow a registration through the status route until it ends (Finished or Failed)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from registry.cli.api import RegistryApi
from registry.domain.vocabulary import State

IN_PROGRESS = State.IN_PROGRESS.value
FINISHED = State.FINISHED.value


@dataclass(frozen=True)
class Pace:
    """Each status request may wait up to `wait` seconds on the registry for a change (long
    polling: one request per change or per `wait`, well inside the rate limit). A registry that
    answers at once without a change (no long polling) is polled every `interval` seconds, slower
    (to `slowest`) while nothing moves."""

    interval: float = 1.0
    slowest: float = 5.0
    sleep: Callable[[float], None] = time.sleep
    wait: int = 20
    clock: Callable[[], float] = time.monotonic


def follow(
    api: RegistryApi,
    name: str,
    version: str,
    on_status: Callable[[dict[str, Any]], None],
    *,
    first: dict[str, Any] | None = None,
    pace: Pace = Pace(),
) -> dict[str, Any]:
    """Follow the status until the state leaves InProgress; returns the last status."""
    status = first or api.status(name, version)
    delay = pace.interval
    while True:
        on_status(status)
        if status.get("state") != IN_PROGRESS:
            return status
        previous, asked = status, pace.clock()
        status = api.status(name, version, wait=pace.wait)
        if status == previous and pace.clock() - asked < pace.interval:
            pace.sleep(delay)  # answered at once, unchanged: this registry does not long-poll
            delay = min(delay * 1.5, pace.slowest)
        else:
            delay = pace.interval
