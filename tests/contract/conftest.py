"""The RegistrationStore contract runs on every store: the in-memory fake the unit tests use, and
the Table Storage adapter on Azurite (fresh tables per test)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from azure.core.pipeline import PipelineResponse
from azure.data.tables import TableServiceClient

from devhost.azurite import Azurite
from registry.adapters.tables import TableNames, TableRegistrationStore
from registry.adapters.webhook_tables import TableWebhookStore
from registry.ports import RegistrationStore, WebhookStore
from tests.conftest import unique
from tests.fakes import FakeRegistrationStore, FakeWebhookStore


@dataclass
class EntityCounter:
    """Counts the entities the table service returns (a raw response hook on every request)."""

    entities: int = 0
    requests: int = 0
    counting: bool = field(default=True)

    def __call__(self, response: PipelineResponse[Any, Any]) -> None:
        if not self.counting:
            return
        self.requests += 1
        http = response.http_response
        if http.request.method != "GET" or http.status_code != 200:
            return
        body = http.json() if http.text() else None
        if isinstance(body, dict):
            values = body.get("value")
            self.entities += len(values) if isinstance(values, list) else 1

    def reset(self) -> None:
        self.entities = self.requests = 0


def table_store(
    azurite: Azurite, hook: Callable[[PipelineResponse[Any, Any]], None] | None = None
) -> TableRegistrationStore:
    """The Table adapter on fresh tables of the emulator."""
    options: dict[str, Any] = {"raw_response_hook": hook} if hook is not None else {}
    service = TableServiceClient.from_connection_string(azurite.connection_string(), **options)
    names = TableNames(
        unique("registrations"), unique("files"), unique("catalog"), unique("changes"), unique("manifests")
    )
    store = TableRegistrationStore(names, service)
    store.ensure_tables()
    return store


@pytest.fixture(params=["fake", pytest.param("azurite", marks=pytest.mark.integration)])
def store(request: pytest.FixtureRequest) -> RegistrationStore:
    if request.param == "fake":
        return FakeRegistrationStore()
    azurite: Azurite = request.getfixturevalue("azurite")
    return table_store(azurite)


@pytest.fixture(params=["fake", pytest.param("azurite", marks=pytest.mark.integration)])
def webhook_store(request: pytest.FixtureRequest) -> WebhookStore:
    if request.param == "fake":
        return FakeWebhookStore()
    azurite: Azurite = request.getfixturevalue("azurite")
    service = TableServiceClient.from_connection_string(azurite.connection_string())
    store = TableWebhookStore(service, unique("webhooks"), unique("deliveries"))
    store.ensure_tables()
    return store
