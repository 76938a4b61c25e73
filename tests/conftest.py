"""Shared fixtures: a real Azurite on free ports, and source files in a model owner's account."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from azure.storage.blob import BlobSasPermissions, BlobServiceClient, ContainerClient, generate_blob_sas

from devhost.azurite import OWNER_ACCOUNT, Azurite, start_azurite


@dataclass
class Sources:
    """A container in the model owner's (emulated) storage account, handing out SAS URLs."""

    container: ContainerClient

    def upload(self, name: str, data: bytes) -> str:
        self.container.upload_blob(name, data, overwrite=True)
        return self.url(name)

    def url(self, name: str, *, expiry: timedelta = timedelta(hours=1)) -> str:
        sas = generate_blob_sas(
            OWNER_ACCOUNT[0],
            self.container.container_name,
            name,
            account_key=OWNER_ACCOUNT[1],
            permission=BlobSasPermissions(read=True),
            expiry=datetime.now(UTC) + expiry,
        )
        return f"{self.container.url}/{name}?{sas}"


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    with start_azurite(None) as emulator:
        yield emulator


@pytest.fixture
def sources(azurite: Azurite) -> Sources:
    service = BlobServiceClient.from_connection_string(azurite.connection_string(OWNER_ACCOUNT))
    container = service.create_container(f"src{uuid.uuid4().hex[:12]}")
    return Sources(container)


def unique(prefix: str) -> str:
    """A fresh table/queue/container name, so that tests sharing the emulator never collide."""
    return f"{prefix}{uuid.uuid4().hex[:12]}"
