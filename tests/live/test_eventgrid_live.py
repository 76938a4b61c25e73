"""The Event Grid sink against a real custom topic.

Runs only when EVENT_GRID_TOPIC_ENDPOINT names a topic (CloudEvents 1.0 input schema) that your
Azure login can publish to through DefaultAzureCredential (EventGrid Data Sender, as the app has).
Skipped otherwise. With EVENT_GRID_QUEUE_CONNECTION_STRING and EVENT_GRID_QUEUE (a Storage queue
that an event subscription of the topic delivers to), it also reads the events back and checks
their ids, types and subjects.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from datetime import UTC, datetime

import pytest

from registry.adapters.eventgrid import EventGridSink
from registry.domain.events import Event, EventType

ENDPOINT = os.environ.get("EVENT_GRID_TOPIC_ENDPOINT", "")
QUEUE_CONNECTION = os.environ.get("EVENT_GRID_QUEUE_CONNECTION_STRING", "")
QUEUE = os.environ.get("EVENT_GRID_QUEUE", "")

pytestmark = pytest.mark.skipif(
    not ENDPOINT, reason="live Event Grid tests: set EVENT_GRID_TOPIC_ENDPOINT (a custom topic's endpoint)"
)


def _events() -> list[Event]:
    run = uuid.uuid4().hex[:8]
    now = datetime.now(UTC)
    return [
        Event(kind, "live-test", f"model-{run}", "1.0", now, f"{run}-{kind.short}", public=False, data={})
        for kind in (EventType.REGISTERED, EventType.FINISHED)
    ]


def test_events_published_with_the_app_identity_reach_the_topic() -> None:
    from azure.eventgrid import EventGridPublisherClient
    from azure.identity import DefaultAzureCredential

    events = _events()
    sink = EventGridSink(
        EventGridPublisherClient(ENDPOINT, DefaultAzureCredential()), "https://live-test.invalid"
    )
    sink.publish(events)  # raises SinkUnavailable unless the topic accepted them

    if not (QUEUE_CONNECTION and QUEUE):
        return
    from azure.storage.queue import QueueClient

    queue = QueueClient.from_connection_string(QUEUE_CONNECTION, QUEUE)
    wanted = {e.id: e for e in events}
    deadline = time.monotonic() + 120
    while wanted and time.monotonic() < deadline:
        for message in queue.receive_messages(max_messages=32, visibility_timeout=30):
            document = json.loads(message.content)
            event = wanted.pop(document.get("id"), None)
            if event is not None:
                assert document["type"] == event.type.value
                assert document["subject"] == event.subject
                queue.delete_message(message)
        time.sleep(2)
    assert not wanted, f"not delivered within 2 minutes: {sorted(wanted)}"
