"""Follow a registration through the status route until it ends (Finished or Failed)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from registry.cli.api import RegistryApi

IN_PROGRESS = "InProgress"
FINISHED = "Finished"


@dataclass(frozen=True)
class Pace:
    """How often to poll: every `interval` seconds while the copy moves, slower (to `slowest`) while not.

    Once a second stays well inside the registry's default rate limit (100 requests a minute).
    """

    interval: float = 1.0
    slowest: float = 5.0
    sleep: Callable[[float], None] = time.sleep


def follow(
    api: RegistryApi,
    name: str,
    version: str,
    on_status: Callable[[dict[str, Any]], None],
    *,
    first: dict[str, Any] | None = None,
    pace: Pace = Pace(),
) -> dict[str, Any]:
    """Poll until the state leaves InProgress (without `first`, the first poll waits one interval)."""
    if first is None:
        pace.sleep(pace.interval)
    status = first or api.status(name, version)
    wait = pace.interval
    while True:
        on_status(status)
        if status.get("state") != IN_PROGRESS:
            return status
        pace.sleep(wait)
        previous = status
        status = api.status(name, version)
        moved = _copied(status) != _copied(previous) or status.get("state") != previous.get("state")
        wait = pace.interval if moved else min(wait * 1.5, pace.slowest)


def _copied(status: dict[str, Any]) -> int:
    return sum(int(f.get("bytes_copied") or 0) for f in status.get("files") or [] if isinstance(f, dict))
