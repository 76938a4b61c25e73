"""The `registry` command line against a local stack of its own: Azurite and the local host on free ports.

The CLI runs as the installed console script, in a subprocess, with the stack described to it the
way `make run` does (a stack.json, here in a temporary folder via REGISTRY_STACK).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from azure.storage.blob import BlobServiceClient, ContainerClient

from devhost.azurite import OWNER_ACCOUNT, REGISTRY_ACCOUNT, Azurite
from tests.conftest import unique
from tests.e2e.conftest import LocalHost, dev_host_env

RATE_LIMITS = "20/2"  # requests per seconds, per caller
REGISTRY_SCRIPT = Path(sys.executable).parent / "registry"
SMALL_FILES = {
    "score.py": b"def init(model_dir):\n    pass\n",
    "environment.yml": b"name: cli-test\n",
    "README.md": b"# A model registered by the CLI tests\n",
}
MODEL_YAML = """\
model_config:
  type: DECODER
  description: Registered by the CLI tests
  inference_properties: {entry_script: score.py, conda_env: environment.yml}
model_metainfo:
  input_types: [NATURAL_LANGUAGE]
  input_languages: [en]
  input_description: Any text
  output_types: [NATURAL_LANGUAGE]
  output_languages: [en]
  output_description: The text reversed
  num_params: 7
  index_page_file: README.md
"""


@pytest.fixture(scope="module")
def host_env(azurite: Azurite) -> dict[str, str]:
    """The e2e tests' dev settings, with bigger blocks and slices: these copies are tens of MiB."""
    return dev_host_env(azurite) | {
        "REGISTRY_COPY_BLOCK_MIB": "8",
        "REGISTRY_COPY_CONCURRENCY": "4",
        "REGISTRY_COPY_TIME_BUDGET_SECONDS": "5",
        "REGISTRY_COPY_LEASE_SECONDS": "10",
        "DEVHOST_LOG_LEVEL": "WARNING",
        # A rate limit, as deployed, but wider: the CLI must ride through its 429s (Retry-After).
        "REGISTRY_RATE_LIMITS": RATE_LIMITS,
    }


@pytest.fixture(scope="module")
def local_host(host_env: dict[str, str]) -> Iterator[LocalHost]:
    with LocalHost(host_env) as host:
        yield host


@dataclass
class Cli:
    """Runs `registry` against the test stack, as a person would after `make run`."""

    env: dict[str, str]
    api: str
    owner_container: ContainerClient  # the user's own container in the emulator's owner account

    def command(self, *args: str) -> list[str]:
        return [str(REGISTRY_SCRIPT), *args]

    def run(self, *args: str, user: str = "alice", timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.command(*args, "--as", user) if args and args[0] != "--help" else self.command(*args),
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def json(self, *args: str, user: str = "alice") -> Any:
        done = self.run(*args, "--json", user=user)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    def download(self, owner: str, name: str, version: str, target: str) -> bytes:
        """The registry's copy of a file, through the API's 302 to a read-only link."""
        with self.http(owner) as http:
            redirect = http.get(f"/api/v1.0/model/{name}/{version}/{owner}/files/{target}")
        assert redirect.status_code == 302, redirect.text
        response = httpx.get(redirect.headers["Location"], timeout=60)
        assert response.status_code == 200
        return response.content

    def http(self, user: str = "alice", *, wait_out_429: bool = True) -> httpx.Client:
        headers = {"X-MS-CLIENT-PRINCIPAL-ID": user, "X-MS-CLIENT-PRINCIPAL-NAME": user}
        transport = WaitsOut429() if wait_out_429 else None
        return httpx.Client(base_url=self.api, headers=headers, timeout=30, transport=transport)


class WaitsOut429(httpx.HTTPTransport):
    """The tests' own requests wait out the registry's rate limit as the CLI does."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        for _ in range(20):
            response = super().handle_request(request)
            if response.status_code != 429:
                return response
            response.close()
            time.sleep(float(response.headers.get("Retry-After", "1")))
        return response


@pytest.fixture(scope="module")
def cli(
    azurite: Azurite,
    local_host: LocalHost,
    host_env: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Cli:
    if not REGISTRY_SCRIPT.exists():
        pytest.fail(f"{REGISTRY_SCRIPT} is missing: `make install` installs the console script (-e .[cli])")
    home = tmp_path_factory.mktemp("cli-home")
    stack = home / "stack.json"
    stack.write_text(
        json.dumps(
            {
                "api": local_host.url,
                "blob_endpoint": f"http://127.0.0.1:{azurite.ports['blob']}",
                "ports": azurite.ports,
                "accounts": {"registry": REGISTRY_ACCOUNT[0], "owner": OWNER_ACCOUNT[0]},
            }
        )
    )
    container = unique("uploads")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REGISTRY_", "AzureWebJobs"))}
    env |= {
        "REGISTRY_STACK": str(stack),
        "REGISTRY_STATE_DIR": str(home / "state"),
        "REGISTRY_CONFIG": str(home / "no-config.yaml"),
        "REGISTRY_CONTAINER": container,
        "NO_COLOR": "1",
    }
    owner = BlobServiceClient.from_connection_string(azurite.connection_string(OWNER_ACCOUNT))
    return Cli(env, local_host.url, owner.get_container_client(container))


def model_folder(root: Path, files: dict[str, bytes], model_yaml: str = MODEL_YAML) -> Path:
    """A model folder: model.yaml, the small files every model needs, and `files` (paths may nest)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "model.yaml").write_text(model_yaml)
    for name, data in {**SMALL_FILES, **files}.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root
