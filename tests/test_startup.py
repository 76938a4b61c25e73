"""The app refuses to start on settings that would trust anyone's identity headers (issue 8.8)."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
KEY = base64.b64encode(bytes(32)).decode()
REMOTE = "DefaultEndpointsProtocol=https;AccountName=prod;AccountKey=a2V5;EndpointSuffix=core.windows.net"
LOCAL = (
    "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;"
    "BlobEndpoint=http://127.0.0.1:1/devstoreaccount1;QueueEndpoint=http://127.0.0.1:2/devstoreaccount1;"
    "TableEndpoint=http://127.0.0.1:3/devstoreaccount1;"
)


def _index(storage: str) -> subprocess.CompletedProcess[str]:
    """Import function_app as the Functions host does when it indexes the app."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REGISTRY_", "AzureWebJobs"))}
    env |= {"AzureWebJobsStorage": storage, "REGISTRY_SEALING_KEY": KEY, "REGISTRY_DEV_MODE": "true"}
    return subprocess.run(
        [sys.executable, "-c", "import function_app"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_dev_mode_against_real_storage_refuses_to_start_saying_why() -> None:
    started = _index(REMOTE)
    assert started.returncode != 0
    assert "SettingsError" in started.stderr
    assert "REGISTRY_DEV_MODE" in started.stderr and "loopback" in started.stderr


@pytest.mark.parametrize("storage", [LOCAL, "UseDevelopmentStorage=true"])
def test_dev_mode_on_the_local_emulator_starts(storage: str) -> None:
    started = _index(storage)
    assert started.returncode == 0, started.stderr
