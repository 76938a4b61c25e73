"""Follow a registration through the status route until it ends (Finished or Failed)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from registry.cli.api import RegistryApi

IN_PROGRESS = "InProgress"
FINISHED = "Finished"


def follow(
    api: RegistryApi,
    name: str,
    version: str,
    on_status: Callable[[dict[str, Any]], None],
    *,
    first: dict[str, Any] | None = None,
    interval: float = 0.5,
    max_interval: float = 3.0,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Poll until the state leaves InProgress; polls slow down while nothing moves."""
    status = first or api.status(name, version)
    wait = interval
    while True:
        on_status(status)
        if status.get("state") != IN_PROGRESS:
            return status
        sleep(wait)
        previous = status
        status = api.status(name, version)
        moved = _copied(status) != _copied(previous) or status.get("state") != previous.get("state")
        wait = interval if moved else min(wait * 1.5, max_interval)


def _copied(status: dict[str, Any]) -> int:
    return sum(int(f.get("bytes_copied") or 0) for f in status.get("files") or [] if isinstance(f, dict))
