"""Copy of a 1 GiB model by the worker, against a bare Put Block From URL loop; the worker's memory.

Azurite keeps its data on disk (in a temporary folder). The model (several files of random bytes
plus the three small files every registration needs) is uploaded once to the owner's account. Then,
alternating, the bare loop (`stage_block_from_url` with the worker's block size and concurrency,
then `commit_block_list`) and the worker (`process_job`, called again on CONTINUED until FINISHED)
copy it into the registry's account. The worker's memory is measured in fresh processes copying a
small and the large model: its peak RSS during the copy must not grow with the size of the files
(Python's traced allocations are reported too).
"""

from __future__ import annotations

import base64
import json
import math
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from azure.storage.blob import BlobBlock, ContainerClient

from bench.copying import SMALL_FILES, copy_to_the_end, register_model, worker_settings
from bench.processes import running_azurite, sealing_key
from bench.report import Figure
from bench.sources import MIB, OwnerContainer, SourceFile, md5_of_blob
from devhost.azurite import REPO
from registry.bootstrap import build
from registry.services.dependencies import Dependencies
from registry.settings import load_settings

BARE_CONTAINER = "bare-copies"


@dataclass(frozen=True)
class CopyPlan:
    files: int = 4
    file_mib: int = 256  # 4 x 256 MiB = the 1 GiB model
    small_file_mib: int = 16  # 4 x 16 MiB = the 64 MiB model of the memory comparison
    rounds: int = 2  # of each side, in the order bare, worker, worker, bare (3 would add ~40 s)

    @classmethod
    def quick(cls) -> CopyPlan:
        return cls(files=4, file_mib=16, small_file_mib=4, rounds=1)


@dataclass(frozen=True)
class Model:
    files: list[SourceFile]

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)

    @property
    def urls(self) -> dict[str, str]:
        return {f.target: f.url for f in self.files}

    @property
    def largest(self) -> SourceFile:
        return max(self.files, key=lambda f: f.size)


def upload_model(owner: OwnerContainer, prefix: str, files: int, file_mib: int) -> Model:
    uploaded = [owner.upload_bytes(f"{prefix}/{name}", data) for name, data in SMALL_FILES.items()]
    for i in range(files):
        uploaded.append(owner.upload_random(f"{prefix}/weights/part-{i:02d}.bin", file_mib * MIB))
    # The registration names files by their target; the blobs sit under the prefix in the source.
    return Model([SourceFile(f.target.removeprefix(prefix + "/"), f.url, f.size, f.md5) for f in uploaded])


def bare_copy(
    destination: ContainerClient, prefix: str, model: Model, block_size: int, concurrency: int
) -> float:
    """The least a server-side copy costs: every block staged from its URL, then one commit per file."""
    began = time.perf_counter()
    with ThreadPoolExecutor(concurrency, thread_name_prefix="bare") as pool:
        staged: list[tuple[SourceFile, list[str], list[Future[Any]]]] = []
        for source in model.files:
            blob = destination.get_blob_client(f"{prefix}/{source.target}")
            ids = [
                base64.b64encode(f"bare-{i:06d}".encode()).decode()
                for i in range(math.ceil(source.size / block_size))
            ]
            futures = [
                pool.submit(
                    blob.stage_block_from_url,
                    block_id,
                    source.url,
                    source_offset=i * block_size,
                    source_length=min(block_size, source.size - i * block_size),
                )
                for i, block_id in enumerate(ids)
            ]
            staged.append((source, ids, futures))
        for source, ids, futures in staged:  # commits while the next files' blocks are in flight
            for future in futures:
                future.result()
            destination.get_blob_client(f"{prefix}/{source.target}").commit_block_list(
                [BlobBlock(block_id) for block_id in ids]
            )
    return time.perf_counter() - began


@dataclass(frozen=True)
class WorkerCopy:
    seconds: float  # the copy only, not the registration before it
    invocations: int
    prefix: str  # where the registration's files are in the registry's container


def worker_copy(deps: Dependencies, version: str, model: Model) -> WorkerCopy:
    registration = register_model(deps, version, model.urls)
    began = time.perf_counter()
    run = copy_to_the_end(deps, registration)
    seconds = time.perf_counter() - began
    return WorkerCopy(seconds, run.invocations, registration.blob_path("").rstrip("/"))


def _check_sizes(container: ContainerClient, prefix: str, model: Model) -> None:
    for source in model.files:
        size = container.get_blob_client(f"{prefix}/{source.target}").get_blob_properties().size
        if size != source.size:
            raise RuntimeError(f"{prefix}/{source.target}: copied {size} bytes, expected {source.size}")


def probe_memory(settings: dict[str, str], version: str, model: Model) -> dict[str, Any]:
    """The worker copying `model` in a fresh process: its peak traced allocations and RSS."""
    spec = json.dumps({"settings": settings, "version": version, "files": model.urls})
    done = subprocess.run(
        [sys.executable, "-m", "bench.copy_probe"],
        input=spec,
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the memory probe failed ({done.returncode}):\n{done.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    if result["sizes"] != {f.target: f.size for f in model.files}:
        raise RuntimeError(f"the memory probe's copy has the wrong sizes: {result['sizes']}")
    return result


def _mib_per_s(size: int, seconds: float) -> float:
    return size / MIB / seconds


def run(plan: CopyPlan) -> Sequence[Figure]:
    with (
        tempfile.TemporaryDirectory(prefix="bench-copy-") as scratch,
        running_azurite(Path(scratch)) as azurite,
    ):
        owner = OwnerContainer(azurite, "model-sources")
        began = time.perf_counter()
        large = upload_model(owner, "large", plan.files, plan.file_mib)
        small = upload_model(owner, "small", plan.files, plan.small_file_mib)
        upload_seconds = time.perf_counter() - began

        settings = worker_settings(azurite.connection_string(), sealing_key())
        deps = build(load_settings(settings))
        policy = deps.copy_policy
        connection = azurite.connection_string()
        models = ContainerClient.from_connection_string(connection, deps.settings.models_container)
        bare = ContainerClient.from_connection_string(connection, BARE_CONTAINER)
        bare.create_container()

        bare_seconds: list[float] = []
        copies: list[WorkerCopy] = []
        # Alternate (bare, worker, worker, bare, ...) so that drift in the machine's load favours neither.
        order = (["bare", "worker", "worker", "bare"] * plan.rounds)[: 2 * plan.rounds]
        for step, side in enumerate(order):
            if side == "bare":
                prefix = f"round{step}"
                bare_seconds.append(bare_copy(bare, prefix, large, policy.block_size, policy.concurrency))
                _check_sizes(bare, prefix, large)
            else:
                copies.append(worker_copy(deps, f"1.{step}", large))
                _check_sizes(models, copies[-1].prefix, large)
        # The bytes, not just the sizes: one whole file of the worker's last copy, hashed.
        checked = large.largest
        md5 = md5_of_blob(models, f"{copies[-1].prefix}/{checked.target}")
        if md5 != checked.md5:
            raise RuntimeError(f"the worker's copy of {checked.target} differs from its source (MD5)")

        small_memory = probe_memory(settings, "2.0", small)
        large_memory = probe_memory(settings, "2.1", large)

    worker_rate = max(_mib_per_s(large.size, c.seconds) for c in copies)
    bare_rate = max(_mib_per_s(large.size, s) for s in bare_seconds)
    copy_figure = Figure(
        key="copy_throughput",
        label=f"worker copy of a {large.size / MIB:.0f} MiB model ({plan.files + len(SMALL_FILES)} files)",
        unit="MiB/s",
        value=worker_rate,
        baseline=bare_rate,
        baseline_label="bare stage_block_from_url loop",
        target=">= 0.9",
        details={
            "baseline_is": "stage_block_from_url + commit_block_list, same block size and concurrency",
            "model_bytes": large.size,
            "block_size_mib": policy.block_size / MIB,
            "concurrency": policy.concurrency,
            "worker_seconds": [round(c.seconds, 2) for c in copies],
            "bare_seconds": [round(s, 2) for s in bare_seconds],
            "worker_invocations": [c.invocations for c in copies],
            "verified": f"MD5 of {checked.target} ({checked.size / MIB:.0f} MiB) matches its source",
            "upload_seconds": round(upload_seconds, 1),
        },
    )
    small_rss, large_rss = small_memory["peak_rss_mib"], large_memory["peak_rss_mib"]
    memory_figure = Figure(
        key="copy_peak_memory",
        label=f"worker peak RSS copying {large.size / MIB:.0f} MiB",
        unit="MiB",
        value=large_rss,
        baseline=small_rss,
        baseline_label=f"copying {small.size / MIB:.0f} MiB",
        target="<= 1.5",
        details={
            "measured_by": "peak RSS (VmHWM) of a fresh worker process during the copy, reset before it",
            "target_means": "the worker's memory does not grow with the size of the files",
            "small_model_bytes": small.size,
            "large_model_bytes": large.size,
            "peak_rss_reset_before_copy": small_memory["peak_rss_is_of_the_copy"]
            and large_memory["peak_rss_is_of_the_copy"],
            "rss_before_copy_mib": {
                "small": round(small_memory["rss_before_mib"], 1),
                "large": round(large_memory["rss_before_mib"], 1),
            },
            "peak_rss_growth_mib": {
                "small": round(small_rss - small_memory["rss_before_mib"], 1),
                "large": round(large_rss - large_memory["rss_before_mib"], 1),
            },
            "traced_peak_mib": {
                "small": round(small_memory["traced_peak_mib"], 3),
                "large": round(large_memory["traced_peak_mib"], 3),
            },
            "traced_peak_ratio": round(large_memory["traced_peak_mib"] / small_memory["traced_peak_mib"], 3),
            "probe_seconds": {
                "small": round(small_memory["seconds"], 2),
                "large": round(large_memory["seconds"], 2),
            },
        },
    )
    return [copy_figure, memory_figure]
