"""EventSink on an Azure Event Grid custom topic (CloudEvents 1.0 schema), with Entra ID auth.

Event Grid is the system of record for Azure consumers: they subscribe to the topic (Functions,
Logic Apps, queues, webhooks of their own) and filter on the CloudEvents type and subject.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from azure.core.exceptions import AzureError
from azure.core.messaging import CloudEvent

from registry.domain.errors import SinkUnavailable
from registry.domain.events import Event

# A publish request holds at most 1 MB; registry events are small (a few hundred bytes each).
_BATCH = 100


class Publisher(Protocol):
    """What the sink needs of azure.eventgrid.EventGridPublisherClient."""

    def send(self, events: list[CloudEvent[Any]], **kwargs: Any) -> None: ...


def cloud_event(event: Event, source: str) -> CloudEvent[Any]:
    document = event.cloud_event(source)
    return CloudEvent(
        source=document["source"],
        type=document["type"],
        id=document["id"],
        time=event.time,
        subject=document["subject"],
        datacontenttype=document["datacontenttype"],
        data=document["data"],
    )


class EventGridSink:
    def __init__(self, publisher: Publisher, source: str) -> None:
        self._publisher = publisher
        self._source = source

    def publish(self, events: Sequence[Event]) -> None:
        batch = [cloud_event(e, self._source) for e in events]
        try:
            for start in range(0, len(batch), _BATCH):
                self._publisher.send(batch[start : start + _BATCH])
        except AzureError as error:  # the client already retried with backoff
            raise SinkUnavailable(f"Event Grid: {type(error).__name__}") from error
