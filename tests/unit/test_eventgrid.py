"""The Event Grid sink: CloudEvents handed to the SDK's publisher client, and what that client
puts on the wire (captured below the SDK, at the HTTP session), with Entra ID authentication."""

from __future__ import annotations

import io
import json
from datetime import timedelta
from typing import Any

import pytest
import requests
import urllib3
from azure.core.credentials import AccessToken
from azure.core.exceptions import HttpResponseError, ServiceRequestError
from azure.core.messaging import CloudEvent
from azure.eventgrid import EventGridPublisherClient
from requests.adapters import HTTPAdapter

from registry.adapters.eventgrid import EventGridSink
from registry.bootstrap import build
from registry.domain.errors import SinkUnavailable
from registry.domain.events import Event, EventType
from registry.services.webhook_delivery import WebhookFanout
from tests.builders import make_settings
from tests.fakes import T0, FakeBlobCopier, FakeJobQueue, FakeRegistrationStore, FakeWebhookStore

ENDPOINT = "https://topic-registry.westeurope-1.eventgrid.azure.net/api/events"
SOURCE = "https://registry.example.org"


def event(n: int = 0, kind: EventType = EventType.FINISHED) -> Event:
    return Event(
        kind,
        "alice",
        "bert",
        "1.0",
        T0 + timedelta(seconds=n),
        f"change-{n}",
        public=False,
        data={"state": "Finished", "message": "Registered 2 files", "revision": 1},
    )


class FakePublisher:
    def __init__(self, error: Exception | None = None) -> None:
        self.batches: list[list[CloudEvent[Any]]] = []
        self.error = error

    def send(self, events: list[CloudEvent[Any]], **kwargs: Any) -> None:
        if self.error is not None:
            raise self.error
        self.batches.append(events)


def test_each_event_goes_out_as_a_cloud_event_with_its_id_source_subject_and_data() -> None:
    publisher = FakePublisher()
    EventGridSink(publisher, SOURCE).publish([event()])
    [[sent]] = publisher.batches
    assert sent.id == event().id
    assert sent.source == SOURCE
    assert sent.type == "registry.model.finished"
    assert sent.subject == "models/alice/bert/1.0"
    assert sent.time == T0
    assert sent.data == {"owner": "alice", "name": "bert", "version": "1.0", **event().data}


def test_many_events_go_out_in_batches_of_at_most_a_hundred() -> None:
    publisher = FakePublisher()
    EventGridSink(publisher, SOURCE).publish([event(n) for n in range(250)])
    assert [len(b) for b in publisher.batches] == [100, 100, 50]


@pytest.mark.parametrize(
    "error", [ServiceRequestError("no route"), HttpResponseError(message="503 Service Unavailable")]
)
def test_a_topic_that_cannot_take_events_leaves_them_for_the_next_dispatch(error: Exception) -> None:
    with pytest.raises(SinkUnavailable, match="Event Grid"):
        EventGridSink(FakePublisher(error), SOURCE).publish([event()])


class Capture:
    """Stands in for the HTTP adapter under the SDK's requests session: keeps each request and
    answers 200, as Event Grid does."""

    def __init__(self) -> None:
        self.requests: list[requests.PreparedRequest] = []

    def send(self, request: requests.PreparedRequest) -> requests.Response:
        self.requests.append(request)
        response = requests.Response()
        response.status_code = 200
        response.raw = urllib3.HTTPResponse(body=io.BytesIO(b""), status=200, preload_content=False)
        response.request = request
        response.url = str(request.url)
        return response


class FakeCredential:
    def __init__(self) -> None:
        self.scopes: list[str] = []

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.scopes += scopes
        return AccessToken("entra-token", 4_000_000_000)


def test_the_sdk_client_posts_a_cloud_events_batch_with_an_entra_token(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The client takes no transport for a basic topic (azure-eventgrid 4.22 drops the keyword), so
    # the capture replaces the requests adapter its transport mounts.
    capture, credential = Capture(), FakeCredential()
    monkeypatch.setattr(HTTPAdapter, "send", lambda adapter, request, *a, **k: capture.send(request))
    client = EventGridPublisherClient(ENDPOINT, credential)
    EventGridSink(client, SOURCE).publish([event(0), event(1, EventType.DELETED)])

    [request] = capture.requests
    assert request.method == "POST" and str(request.url).startswith(ENDPOINT)
    assert request.headers["Authorization"] == "Bearer entra-token"
    assert credential.scopes == ["https://eventgrid.azure.net/.default"]
    assert str(request.headers["Content-Type"]).startswith("application/cloudevents-batch+json")
    assert isinstance(request.body, (bytes, str))
    body = json.loads(request.body)
    assert [e["id"] for e in body] == [event(0).id, event(1, EventType.DELETED).id]
    assert {e["specversion"] for e in body} == {"1.0"}
    assert body[1]["type"] == "registry.model.deleted" and body[1]["source"] == SOURCE
    assert body[0]["subject"] == "models/alice/bert/1.0" and body[0]["data"]["revision"] == 1


def _deps(**env: str) -> Any:
    blobs = FakeBlobCopier()
    return build(
        make_settings(**env),
        store=FakeRegistrationStore(),
        queue=FakeJobQueue(),
        copier=blobs,
        files=blobs,
        webhooks=FakeWebhookStore(),
    )


def test_the_app_publishes_to_event_grid_only_when_a_topic_is_configured() -> None:
    # The webhook fan-out is always there (it finds no subscription, or some).
    assert [type(s) for s in _deps().event_sinks] == [WebhookFanout]
    sink, webhooks = _deps(REGISTRY_EVENT_GRID_ENDPOINT=ENDPOINT, REGISTRY_BASE_URL=SOURCE).event_sinks
    assert isinstance(sink, EventGridSink) and isinstance(webhooks, WebhookFanout)
