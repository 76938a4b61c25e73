"""The local Functions host as a subprocess, serving function_app.py on its own emulator.

Every answer a test gets through `LocalHost.client()` is checked against the app's own OpenAPI
document (tests/e2e/openapi_conformance.py): a mismatch fails the request that got it, and the
test at teardown if the test swallowed that failure."""

from __future__ import annotations

import base64
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from azure.storage.blob import ContainerClient

from devhost.azurite import Azurite
from tests.conftest import unique
from tests.e2e.openapi_conformance import ConformanceHook

REPO = Path(__file__).resolve().parents[2]
STARTED = "Host started: "


@dataclass
class LocalHost:
    """One run of `python -m devhost`; restartable, to test crashes."""

    env: dict[str, str]
    process: subprocess.Popen[str] | None = None
    url: str = ""
    log: list[str] = field(default_factory=list)
    conformance: ConformanceHook | None = None

    def start(self, timeout: float = 60) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "devhost", "--port", "0", "--app-dir", str(REPO)],
            cwd=REPO,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        lines: queue.Queue[str] = queue.Queue()
        process = self.process

        def drain() -> None:
            assert process.stdout is not None
            for line in process.stdout:
                self.log.append(line)
                lines.put(line)

        threading.Thread(target=drain, daemon=True).start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=0.2)
            except queue.Empty:
                if process.poll() is not None:
                    break
                continue
            if line.startswith(STARTED):
                self.url = line[len(STARTED) :].strip()
                self.conformance = ConformanceHook(self.url)
                return
        self.kill()
        raise RuntimeError("the local host did not start:\n" + "".join(self.log))

    def kill(self) -> None:
        """SIGKILL: no chance to clean up, as when the machine dies."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> LocalHost:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def client(self, principal: str | None = "alice") -> httpx.Client:
        headers = (
            {"X-MS-CLIENT-PRINCIPAL-ID": principal, "X-MS-CLIENT-PRINCIPAL-NAME": principal}
            if principal
            else {}
        )
        hooks: list[Callable[..., Any]] = [self.conformance] if self.conformance is not None else []
        return httpx.Client(base_url=self.url, headers=headers, timeout=30, event_hooks={"response": hooks})


_CALL_REPORT = pytest.StashKey[pytest.TestReport]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.when == "call":
        item.stash[_CALL_REPORT] = report
    return report


@pytest.fixture(autouse=True)
def answers_conform_to_openapi(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fails a test that passed although an answer it got broke the OpenAPI document."""
    before = len(ConformanceHook.mismatches)
    yield
    mismatches = ConformanceHook.mismatches[before:]
    report = request.node.stash.get(_CALL_REPORT, None)
    if mismatches and (report is None or report.passed):
        pytest.fail("\n".join(mismatches))


def dev_host_env(azurite: Azurite) -> dict[str, str]:
    """A local host's dev settings on this emulator, in tables and a container of its own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REGISTRY_", "AzureWebJobs"))}
    return env | {
        "AzureWebJobsStorage": azurite.connection_string(),
        "REGISTRY_SEALING_KEY": base64.b64encode(os.urandom(32)).decode(),
        "REGISTRY_DEV_MODE": "true",
        "REGISTRY_ALLOW_INSECURE_SOURCES": "true",
        "REGISTRY_MODELS_CONTAINER": unique("models"),
        "REGISTRY_REGISTRATIONS_TABLE": unique("registrations"),
        "REGISTRY_FILES_TABLE": unique("files"),
        "REGISTRY_CATALOG_TABLE": unique("catalog"),
        "REGISTRY_CHANGES_TABLE": unique("changes"),
        "REGISTRY_WEBHOOKS_TABLE": unique("webhooks"),
        "REGISTRY_WEBHOOK_DELIVERIES_TABLE": unique("deliveries"),
        "DEVHOST_QUEUE_LEASE_SECONDS": "2",
        "DEVHOST_SHUTDOWN_SECONDS": "2",
    }


@pytest.fixture(scope="module")
def host_env(azurite: Azurite) -> dict[str, str]:
    return dev_host_env(azurite) | {
        # Small blocks and slices, short leases: a copy spans many continuations within seconds.
        "REGISTRY_COPY_BLOCK_MIB": "1",
        "REGISTRY_COPY_CONCURRENCY": "2",
        "REGISTRY_COPY_TIME_BUDGET_SECONDS": "0.3",
        "REGISTRY_COPY_LEASE_SECONDS": "3",
        # Tests poll and register fast: admission limits have tests of their own.
        "REGISTRY_RATE_LIMITS": "off",
        "REGISTRY_MAX_IN_PROGRESS": "10000",
    }


@pytest.fixture(scope="module")
def local_host(host_env: dict[str, str]) -> Iterator[LocalHost]:
    with LocalHost(host_env) as host:
        yield host


@pytest.fixture(scope="module")
def models(azurite: Azurite, host_env: dict[str, str]) -> ContainerClient:
    return ContainerClient.from_connection_string(
        azurite.connection_string(), host_env["REGISTRY_MODELS_CONTAINER"]
    )
