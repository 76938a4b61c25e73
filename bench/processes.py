"""The processes a benchmark starts (Azurite, the local Functions host), each stopped by its PID."""

from __future__ import annotations

import base64
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from devhost.azurite import REPO, Azurite, start_azurite

_STARTED = re.compile(r"^Host started: (http://\S+)", re.MULTILINE)


# The Functions host's own switches: the HTTP functions alone, with no job worker, poison handler
# or sweep taking the jobs that the benchmark's registrations enqueue.
WORKER_DISABLED = {
    "AzureWebJobs.copy_worker.Disabled": "true",
    "AzureWebJobs.copy_poisoned.Disabled": "true",
    "AzureWebJobs.requeue_quiet_registrations.Disabled": "true",
}
# A benchmark registers more, and faster, than one caller may (DeepDev's 2/s, 100/min, 500/10 min,
# and 20 registrations in progress per owner): admission control is set out of its way explicitly.
NO_LIMITS = {"REGISTRY_RATE_LIMITS": "off", "REGISTRY_MAX_IN_PROGRESS": "1000000"}
# No log line per invocation: warnings and errors only.
QUIET_HOST = {"DEVHOST_LOG_LEVEL": "WARNING"}


def sealing_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def app_settings(connection_string: str, **extra: str) -> dict[str, str]:
    """The local dev settings the registry's app needs, on this storage, with no admission
    limits, plus `extra`."""
    return {
        "AzureWebJobsStorage": connection_string,
        "REGISTRY_SEALING_KEY": sealing_key(),
        "REGISTRY_DEV_MODE": "true",
        "REGISTRY_ALLOW_INSECURE_SOURCES": "true",
        "PYTHONPATH": str(REPO),
        **NO_LIMITS,
        **extra,
    }


@contextmanager
def running_azurite(location: Path | None) -> Iterator[Azurite]:
    """Azurite on free ports (in memory, or keeping its data at `location`), stopped on exit."""
    emulator = start_azurite(location)
    try:
        yield emulator
    finally:
        emulator.stop()


@dataclass
class LocalHost:
    process: subprocess.Popen[bytes]
    base_url: str
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def _stop(process: subprocess.Popen[bytes], grace: float = 15.0) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)  # the host finishes in-flight invocations, then exits
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def running_host(settings: Mapping[str, str], log_path: Path, timeout: float = 60.0) -> Iterator[LocalHost]:
    """`python -m devhost --port 0` serving this repository's function_app.py, with these app
    settings in its environment."""
    env = {**os.environ, **settings}
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "devhost", "--port", "0", "--app-dir", str(REPO)],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + timeout
        while True:
            match = _STARTED.search(log_path.read_text(errors="replace"))
            if match:
                break
            if process.poll() is not None or time.monotonic() > deadline:
                tail = log_path.read_text(errors="replace")[-4000:]
                raise RuntimeError(f"the local host did not start (exit {process.poll()}):\n{tail}")
            time.sleep(0.05)
        yield LocalHost(process, match.group(1), log_path)
    finally:
        _stop(process)
