"""Registry adapters wired to the test emulator, each test with its own tables, queue and container."""

from __future__ import annotations

import base64
import dataclasses
import os

import pytest

from devhost.azurite import Azurite
from registry.bootstrap import build
from registry.services.dependencies import Dependencies
from registry.settings import load_settings
from tests.conftest import unique

pytestmark = pytest.mark.integration


@pytest.fixture
def deps(azurite: Azurite) -> Dependencies:
    settings = load_settings(
        {
            "AzureWebJobsStorage": azurite.connection_string(),
            "REGISTRY_SEALING_KEY": base64.b64encode(os.urandom(32)).decode(),
            "REGISTRY_DEV_MODE": "true",
            "REGISTRY_ALLOW_INSECURE_SOURCES": "true",
            "REGISTRY_ALLOWED_SOURCE_HOSTS": "*.blob.core.windows.net",
            "REGISTRY_COPY_BLOCK_MIB": "1",
            "REGISTRY_COPY_CONCURRENCY": "4",
            "REGISTRY_COPY_TIME_BUDGET_SECONDS": "60",
            "REGISTRY_COPY_LEASE_SECONDS": "90",
            "REGISTRY_MODELS_CONTAINER": unique("models"),
            "REGISTRY_REGISTRATIONS_TABLE": unique("registrations"),
            "REGISTRY_FILES_TABLE": unique("files"),
        }
    )
    return build(dataclasses.replace(settings, jobs_queue=unique("jobs")))
