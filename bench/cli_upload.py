"""`registry register`'s upload of a folder, against a bare azure-storage-blob upload of the same folder.

Azurite keeps its data on disk (in a temporary folder). The folder is a model: a few large files
of random bytes and many small ones in nested folders. Alternating rounds (bare, CLI, CLI, bare)
upload it, each under a fresh prefix of the owner's account, so that nothing is skipped:

- CLI: `registry.cli.upload.upload_folder` with the settings `registry register` uses by default
  (8 MiB blocks, 8 in flight, 4 files at once; the MD5 of every file computed on the way, block
  ids derived for resuming, the Content-MD5 set on commit).
- Bare: what a short script would do, `ContainerClient.upload_blob(name, file, overwrite=True,
  max_concurrency=8)` for each file in turn (the SDK's own block size and single-put limit).

The figure is the CLI's throughput (MiB/s, best round) over the bare upload's.
"""

from __future__ import annotations

import os
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from azure.storage.blob import BlobServiceClient, ContainerClient

from bench.processes import running_azurite
from bench.report import Figure
from devhost.azurite import OWNER_ACCOUNT
from registry.cli.modelspec import LocalFile, folder_files
from registry.cli.upload import MIB, UploadSettings, upload_folder


@dataclass(frozen=True)
class UploadPlan:
    large_files: int = 3
    large_file_mib: int = 96
    small_files: int = 40
    small_file_kib: int = 256
    rounds: int = 2  # of each side, in the order bare, CLI, CLI, bare

    @classmethod
    def quick(cls) -> UploadPlan:
        return cls(large_files=2, large_file_mib=16, small_files=10, small_file_kib=64, rounds=1)


def make_folder(root: Path, plan: UploadPlan) -> list[LocalFile]:
    for index in range(plan.large_files):
        path = root / "weights" / f"shard-{index}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as stream:
            for _ in range(plan.large_file_mib):
                stream.write(os.urandom(MIB))
    for index in range(plan.small_files):
        path = root / "assets" / f"group-{index % 4}" / f"file-{index}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(plan.small_file_kib * 1024))
    return folder_files(root)


def bare_upload(files: list[LocalFile], container: ContainerClient, prefix: str) -> float:
    started = time.perf_counter()
    for local in files:
        with local.path.open("rb") as stream:
            container.upload_blob(prefix + local.target, stream, overwrite=True, max_concurrency=8)
    return time.perf_counter() - started


def cli_upload(files: list[LocalFile], container: ContainerClient, prefix: str) -> float:
    started = time.perf_counter()
    report = upload_folder(files, container, prefix, UploadSettings())
    seconds = time.perf_counter() - started
    assert report.bytes_sent == report.bytes_total, "a fresh prefix must upload everything"
    return seconds


def run(plan: UploadPlan) -> list[Figure]:
    with (
        tempfile.TemporaryDirectory(prefix="bench-cli-") as temporary,
        running_azurite(Path(temporary) / "azurite") as azurite,
    ):
        files = make_folder(Path(temporary) / "model", plan)
        total = sum(f.size for f in files)
        service = BlobServiceClient.from_connection_string(azurite.connection_string(OWNER_ACCOUNT))
        container = service.get_container_client("uploads")
        container.create_container()
        seconds: dict[str, list[float]] = {"bare": [], "cli": []}
        order = (["bare", "cli", "cli", "bare"] * plan.rounds)[: 2 * plan.rounds]
        for side in order:
            prefix = f"{side}-{uuid.uuid4().hex[:8]}/"
            upload = bare_upload if side == "bare" else cli_upload
            seconds[side].append(upload(files, container, prefix))
        best = {side: total / MIB / min(values) for side, values in seconds.items()}
        return [
            Figure(
                key="cli_upload_throughput",
                label=f"register upload of a {total / MIB:.0f} MiB folder ({len(files)} files)",
                unit="MiB/s",
                value=best["cli"],
                baseline=best["bare"],
                baseline_label="bare upload_blob",
                target=">= 0.9",
                details={
                    "files": len(files),
                    "bytes": total,
                    "seconds_cli": [round(s, 3) for s in seconds["cli"]],
                    "seconds_bare": [round(s, 3) for s in seconds["bare"]],
                },
            )
        ]
