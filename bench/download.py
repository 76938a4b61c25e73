"""`python -m registry download` against a bare azure-storage-blob download of the same files.

Azurite holds a model (a few large files of random bytes and small ones). A small local HTTP server
plays the registry's download side: the signed manifest, the signing keys, and for each file a 302
to an account-SAS read URL on Azurite with its Repr-Digest (what the registry's file route answers).
Alternating, the bare loop (`download_blob(..., max_concurrency=4).readinto(file)`, as many files
at once as the download command takes) and the download command (`registry.download.download`: manifest and
signature checked, Range-capable streaming into `.part` files, SHA-256 of every file) fetch the
model into a fresh directory. Target: the command at 0.8x the bare SDK's throughput or better.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from azure.storage.blob import (
    BlobServiceClient,
    ContainerClient,
    ContainerSasPermissions,
    generate_container_sas,
)
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from bench.processes import running_azurite
from bench.report import Figure
from bench.sources import MIB
from devhost.azurite import OWNER_ACCOUNT
from registry.download import Credentials, ModelRef, Registry, download
from registry.signing import FileDigest, LocalKeySigner, sign_manifest, signing_keys_document

CONTAINER = "download-bench"
NAME, VERSION, OWNER = "bench-model", "1.0", "bench-owner"
# The SDK's own parallel ranged download per file (max_concurrency): faster here than its default
# of 1 (122 against 107 MiB/s for this model), so the stronger baseline.
CHUNKS = int(os.environ.get("BENCH_DOWNLOAD_SDK_CONCURRENCY", "4"))


@dataclass(frozen=True)
class DownloadPlan:
    files: int = 4
    file_mib: int = 64
    parallel: int = 4  # files at once, on both sides
    rounds: int = 2  # of each side, in the order bare, command, command, bare

    @classmethod
    def quick(cls) -> DownloadPlan:
        return cls(files=4, file_mib=8, rounds=1)


def upload_model(container: ContainerClient, plan: DownloadPlan) -> dict[str, FileDigest]:
    files = {"config.json": b'{"bench": true}', "index.md": b"# bench model\n" * 100}
    for i in range(plan.files):
        files[f"weights/part-{i:02d}.bin"] = os.urandom(plan.file_mib * MIB)
    digests = {}
    for path, data in files.items():
        container.upload_blob(path, data, overwrite=True, max_concurrency=4)
        digests[path] = FileDigest(path, len(data), hashlib.sha256(data).hexdigest())
    return digests


class RegistryStandIn:
    """The registry's download routes, redirecting to read URLs on the emulator."""

    def __init__(self, container: ContainerClient, digests: dict[str, FileDigest]) -> None:
        signer = LocalKeySigner.generate()
        signed = sign_manifest(
            list(digests.values()),
            signer,
            subject=NAME,
            registry={"name": NAME, "version": VERSION, "owner": OWNER, "revision": 1},
        )
        self.manifest = {
            "name": NAME,
            "version": VERSION,
            "owner": OWNER,
            "revision": 1,
            "files": [{"path": d.path, "size": d.size, "sha256": d.sha256} for d in digests.values()],
            "digest": signed.digest,
            "key_id": signed.key_id,
            "signature": signed.bundle,
        }
        self.keys = signing_keys_document(signer)
        self.digests = digests
        self.container_url = container.url
        self.sas = generate_container_sas(
            OWNER_ACCOUNT[0],
            container.container_name,
            account_key=OWNER_ACCOUNT[1],
            permission=ContainerSasPermissions(read=True),
            expiry=datetime.now(UTC) + timedelta(hours=2),
        )
        self.server = make_server("127.0.0.1", 0, self, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        model = f"/api/v1.0/model/{NAME}/{VERSION}/{OWNER}"
        if request.path == "/api/v1.0/signing-keys":
            response = Response(json.dumps(self.keys), content_type="application/json")
        elif request.path == f"{model}/manifest":
            response = Response(json.dumps(self.manifest), content_type="application/json")
        elif request.path.startswith(f"{model}/files/"):
            path = unquote(request.path.removeprefix(f"{model}/files/"))
            digest = base64.b64encode(bytes.fromhex(self.digests[path].sha256)).decode()
            response = Response(status=302)
            response.headers["Location"] = f"{self.container_url}/{quote(path)}?{self.sas}"
            response.headers["Repr-Digest"] = f"sha-256=:{digest}:"
        else:
            response = Response(status=404)
        return response(environ, start_response)

    def stop(self) -> None:
        self.server.shutdown()


def bare_download(
    container: ContainerClient, digests: dict[str, FileDigest], target: Path, parallel: int, chunks: int
) -> float:
    def fetch(path: str) -> None:
        destination = target / path
        destination.parent.mkdir(parents=True, exist_ok=True)
        with destination.open("wb") as stream:
            container.download_blob(path, max_concurrency=chunks).readinto(stream)

    began = time.perf_counter()
    with ThreadPoolExecutor(parallel) as pool:
        list(pool.map(fetch, digests))
    return time.perf_counter() - began


def command_download(stand_in: RegistryStandIn, target: Path, parallel: int) -> float:
    registry = Registry(stand_in.url, Credentials())
    began = time.perf_counter()
    result = download(registry, ModelRef(NAME, VERSION, OWNER), target, parallel=parallel, progress=False)
    seconds = time.perf_counter() - began
    if not result.ok:
        raise RuntimeError(f"the download command failed: {result.problems}")
    return seconds


def run(plan: DownloadPlan) -> Sequence[Figure]:
    with tempfile.TemporaryDirectory(prefix="bench-download-") as scratch, running_azurite(None) as azurite:
        service = BlobServiceClient.from_connection_string(azurite.connection_string(OWNER_ACCOUNT))
        container = service.get_container_client(CONTAINER)
        container.create_container()
        digests = upload_model(container, plan)
        size = sum(d.size for d in digests.values())
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
        stand_in = RegistryStandIn(container, digests)
        bare_seconds: list[float] = []
        command_seconds: list[float] = []
        try:
            order = (["bare", "command", "command", "bare"] * plan.rounds)[: 2 * plan.rounds]
            for step, side in enumerate(order):
                target = Path(scratch) / f"{side}-{step}"
                if side == "bare":
                    bare_seconds.append(bare_download(container, digests, target, plan.parallel, CHUNKS))
                else:
                    command_seconds.append(command_download(stand_in, target, plan.parallel))
                shutil.rmtree(target)
        finally:
            stand_in.stop()

    def rate(seconds: float) -> float:
        return size / MIB / seconds

    return [
        Figure(
            key="download_throughput",
            label=f"download command, {size / MIB:.0f} MiB in {len(digests)} files, all verified",
            unit="MiB/s",
            value=max(rate(s) for s in command_seconds),
            baseline=max(rate(s) for s in bare_seconds),
            baseline_label="bare download_blob",
            target=">= 0.8",
            details={"parallel": plan.parallel, "bytes": size, "rounds": plan.rounds},
        )
    ]
