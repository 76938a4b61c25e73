"""An EventSink that keeps what it was handed, and can be made to refuse (a sink that is down)."""

from __future__ import annotations

from collections.abc import Sequence

from registry.domain.errors import SinkUnavailable
from registry.domain.events import Event


class RecordingSink:
    def __init__(self) -> None:
        self.received: list[Event] = []
        self.down = False

    def publish(self, events: Sequence[Event]) -> None:
        if self.down:
            raise SinkUnavailable("fake sink: down")
        self.received += events

    @property
    def kinds(self) -> list[str]:
        return [e.type.short for e in self.received]
