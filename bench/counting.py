"""Storage round-trips, counted on the registry's real clients.

`counted_build(settings)` is the composition root's own `build(settings)`, with its one shared
HTTP transport wrapped so that every request any of the storage clients sends (retries included)
is counted, by service and kind of operation. The requests themselves go to the storage unchanged.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from types import TracebackType
from typing import Any
from unittest import mock
from urllib.parse import parse_qs, urlsplit

from azure.core.pipeline.transport import HttpTransport

from devhost.azurite import Azurite
from registry import bootstrap
from registry.services.dependencies import Dependencies
from registry.settings import Settings


def operation_of(method: str, url: str, services: Mapping[str, str]) -> str:
    """A short name for a storage request: its service, method and kind (e.g. "table POST $batch")."""
    parts = urlsplit(url)
    service = services.get(parts.netloc, parts.netloc)
    last = parts.path.rstrip("/").rsplit("/", 1)[-1]
    comp = parse_qs(parts.query).get("comp", [""])[0]
    if service == "table":
        if last == "$batch":
            kind = last
        elif last.endswith("()"):
            kind = "query"
        else:
            kind = "entity" if last.endswith(")") else "table"
    elif service == "queue":
        kind = "messages" if last == "messages" or "/messages/" in parts.path else "queue"
    else:
        kind = f"comp={comp}" if comp else "blob"
    return f"{service} {method} {kind}"


class CountingTransport(HttpTransport[Any, Any]):
    """Delegates to `inner`, counting each request sent."""

    def __init__(self, inner: HttpTransport[Any, Any], services: Mapping[str, str]) -> None:
        self._inner = inner
        self._services = dict(services)
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()

    def send(self, request: Any, **kwargs: Any) -> Any:
        operation = operation_of(request.method, request.url, self._services)
        with self._lock:
            self.counts[operation] += 1
        return self._inner.send(request, **kwargs)

    def open(self) -> None:
        self._inner.open()

    def close(self) -> None:
        self._inner.close()

    def __enter__(self) -> CountingTransport:
        self._inner.__enter__()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._inner.__exit__(kind, value, traceback)

    @contextmanager
    def counting(self) -> Iterator[Counter[str]]:
        """The requests sent inside the block (the counter is filled when the block ends)."""
        with self._lock:
            before = Counter(self.counts)
        taken: Counter[str] = Counter()
        try:
            yield taken
        finally:
            with self._lock:
                taken.update(self.counts - before)


def services_of(azurite: Azurite) -> dict[str, str]:
    """Azurite's endpoints (host:port) and the service each serves."""
    return {f"{azurite.host}:{port}": service for service, port in azurite.ports.items()}


def counted_build(settings: Settings, services: Mapping[str, str]) -> tuple[Dependencies, CountingTransport]:
    """`build(settings)`, every storage client on one counting transport. `services` maps each
    storage endpoint's host:port to its service ("blob", "queue", "table") for the breakdown.

    build() makes its transport with `shared_transport()`, and takes no transport of its own: the
    counting one is handed in by replacing that function while build() runs (and only then).
    """
    made: list[CountingTransport] = []
    original = bootstrap.shared_transport

    def counting_transport(pool_size: int = 64) -> CountingTransport:
        made.append(CountingTransport(original(pool_size), services))
        return made[-1]

    with mock.patch.object(bootstrap, "shared_transport", counting_transport):
        deps = bootstrap.build(settings)
    if len(made) != 1:
        raise RuntimeError(f"build() made {len(made)} transports; the count expects exactly one")
    return deps, made[0]
