"""Local conventions: the emulator's registry account uses the published development key (so that
`UseDevelopmentStorage=true` and Storage Explorer's local emulator connection work), the model
owner's second account stays, and `make run` says which ports are taken."""

from __future__ import annotations

import json
import socket
import uuid

import pytest
from azure.storage.blob import BlobServiceClient
from azure.storage.queue import QueueServiceClient

from devhost import queues, stack
from devhost.azurite import OWNER_ACCOUNT, REGISTRY_ACCOUNT, Azurite
from tests.infra import ROOT

# Published by Microsoft for the storage emulator and Azurite ("well-known storage account and key").
PUBLISHED_ACCOUNT = "devstoreaccount1"
PUBLISHED_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def connection_string(azurite: Azurite, account: str, key: str) -> str:
    return (
        f"DefaultEndpointsProtocol=http;AccountName={account};AccountKey={key};"
        f"BlobEndpoint={azurite.endpoint('blob', account)};"
        f"QueueEndpoint={azurite.endpoint('queue', account)};"
    )


def test_the_registry_account_is_the_published_development_account() -> None:
    assert REGISTRY_ACCOUNT == (PUBLISHED_ACCOUNT, PUBLISHED_KEY)
    assert f"AccountKey={PUBLISHED_KEY};" in queues.EMULATOR_CONNECTION_STRING
    sample = json.loads((ROOT / "local.settings.sample.json").read_text())["Values"]["AzureWebJobsStorage"]
    assert f"AccountName={PUBLISHED_ACCOUNT};AccountKey={PUBLISHED_KEY};" in sample


@pytest.mark.integration
def test_the_emulator_accepts_the_published_key_and_keeps_the_owner_account(azurite: Azurite) -> None:
    registry = BlobServiceClient.from_connection_string(
        connection_string(azurite, PUBLISHED_ACCOUNT, PUBLISHED_KEY)
    )
    name = f"conv{uuid.uuid4().hex[:12]}"
    registry.create_container(name)
    assert name in {c.name for c in registry.list_containers()}
    queue = QueueServiceClient.from_connection_string(
        connection_string(azurite, PUBLISHED_ACCOUNT, PUBLISHED_KEY)
    )
    queue.create_queue(name)
    owner = BlobServiceClient.from_connection_string(connection_string(azurite, *OWNER_ACCOUNT))
    owner.create_container(name)
    assert name in {c.name for c in owner.list_containers()}


def test_ports_already_taken_are_reported() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        taken = held.getsockname()[1]
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind(("127.0.0.1", 0))
            free = probe.getsockname()[1]
        assert stack.busy_ports({"blob": taken, "queue": free}) == {"blob": taken}
