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


def sealing_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


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
    """`python -m devhost --port 0` on this repository, with these app settings in its environment."""
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
