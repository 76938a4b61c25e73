"""Start and stop the Azurite storage emulator (npm package, run by Node 22 from node_modules)."""

from __future__ import annotations

import os
import re
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

REPO = Path(__file__).resolve().parent.parent
NODE = REPO / "node_modules" / "node" / "bin" / "node"
AZURITE = REPO / "node_modules" / "azurite" / "dist" / "src" / "azurite.js"

# The storage emulator's published development account and key (the same in Azurite and the old
# Storage Emulator; `UseDevelopmentStorage=true` and Storage Explorer's "local emulator" use them).
# Setting AZURITE_ACCOUNTS replaces Azurite's default account, so it is listed there explicitly.
WELL_KNOWN_ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
REGISTRY_ACCOUNT = ("devstoreaccount1", WELL_KNOWN_ACCOUNT_KEY)
# A second account that plays a model owner's own storage account (Azurite copies only between
# accounts it holds itself). Its key is made up for development and is no secret.
OWNER_ACCOUNT = ("modelowner", "bW9kZWxvd25lci1kZXYta2V5LW5vdC1hLXNlY3JldC0wMDAwMDAwMDA=")
# Azurite's own default ports; `make run` uses 10100-10102 unless told otherwise (see devhost.stack).
DEFAULT_PORTS = {"blob": 10000, "queue": 10001, "table": 10002}

_LISTENING = re.compile(r"Azurite (Blob|Queue|Table) service is successfully listening at http://[^:]+:(\d+)")


@dataclass
class Azurite:
    process: subprocess.Popen[str]
    ports: dict[str, int]
    host: str = "127.0.0.1"
    # Azurite waits for open connections before it exits; data kept on disk deserves the wait.
    stop_grace_seconds: float = 10.0

    def endpoint(self, service: str, account: str = REGISTRY_ACCOUNT[0]) -> str:
        return f"http://{self.host}:{self.ports[service]}/{account}"

    def connection_string(self, account: tuple[str, str] = REGISTRY_ACCOUNT) -> str:
        name, key = account
        return (
            f"DefaultEndpointsProtocol=http;AccountName={name};AccountKey={key};"
            f"BlobEndpoint={self.endpoint('blob', name)};"
            f"QueueEndpoint={self.endpoint('queue', name)};"
            f"TableEndpoint={self.endpoint('table', name)};"
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=self.stop_grace_seconds)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> Azurite:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def start_azurite(
    location: Path | None,
    *,
    blob_port: int = 0,
    queue_port: int = 0,
    table_port: int = 0,
    timeout: float = 60.0,
) -> Azurite:
    """Start Azurite (port 0 = any free port) and wait until its three services listen.

    With no `location` the data lives in memory only.
    """
    if not NODE.exists() or not AZURITE.exists():
        raise RuntimeError("Azurite is not installed: run `npm ci` (make does it)")
    args = [str(NODE), str(AZURITE), "--silent", "--skipApiVersionCheck", "--loose"]
    args += ["--blobHost", "127.0.0.1", "--queueHost", "127.0.0.1", "--tableHost", "127.0.0.1"]
    args += ["--blobPort", str(blob_port), "--queuePort", str(queue_port), "--tablePort", str(table_port)]
    if location is None:
        args.append("--inMemoryPersistence")
    else:
        location.mkdir(parents=True, exist_ok=True)
        args += ["--location", str(location)]
    env = {
        **os.environ,
        "AZURITE_ACCOUNTS": ";".join(f"{n}:{k}" for n, k in (REGISTRY_ACCOUNT, OWNER_ACCOUNT)),
    }
    process = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True
    )
    ports: dict[str, int] = {}
    output: list[str] = []
    ready = threading.Event()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:  # keep draining so that Azurite never blocks on a full pipe
            if not ready.is_set():
                output.append(line)
                match = _LISTENING.search(line)
                if match:
                    ports[match.group(1).lower()] = int(match.group(2))
                    if len(ports) == 3:
                        ready.set()

    threading.Thread(target=read, daemon=True, name="azurite-output").start()
    deadline = time.monotonic() + timeout
    while not ready.wait(0.1):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError("Azurite did not start:\n" + "".join(output))
    return Azurite(process, ports, stop_grace_seconds=1.0 if location is None else 10.0)
