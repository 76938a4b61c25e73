"""Copy of a 1 GiB model by the worker, against a bare copy-and-hash loop; the worker's memory.

Azurite keeps its data on disk (in a temporary folder). The model (several files of random bytes
plus the three small files every registration needs) is uploaded once to the owner's account. Then,
alternating, the bare loop and the worker (`process_job`, called again on CONTINUED until
FINISHED) copy it into the registry's account. The worker copies every file and then verifies it:
it reads the registry's copy back and hashes it (SHA-256). So does the bare loop, with nothing
else: `stage_block_from_url` with the worker's block size and concurrency, `commit_block_list`,
then each file read back in the worker's chunks (one read ahead) and hashed.

The worker's hashing phase is told apart from its copy through timing proxies of its ports
(bench/verification.py): its throughput, from the first read back of a file to the last digest
recorded, is compared with the bare loop's hashing (`download_blob` in the same chunks + hashlib);
what verification adds to the time to Finished (the last Put Block List to FINISHED) is reported
next to the time of the copy alone.

The worker's memory is measured in fresh processes copying a small and the large model: its peak
RSS during the whole copy, and during the hashing phase alone, must not grow with the size of the
files (Python's traced allocations are reported too).
"""

from __future__ import annotations

import base64
import hashlib
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

from azure.storage.blob import BlobBlock, BlobClient, ContainerClient

from bench.copying import SMALL_FILES, copy_to_the_end, register_model, worker_settings
from bench.processes import running_azurite, sealing_key
from bench.report import REPORT_ONLY, Figure
from bench.sources import MIB, OwnerContainer, SourceFile, md5_of_blob
from bench.verification import Timeline, timed
from devhost.azurite import REPO
from registry.bootstrap import build
from registry.services.copying import HASH_CHUNK_BYTES, CopyPolicy
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


def bare_hash(container: ContainerClient, prefix: str, model: Model) -> float:
    """The least the verification costs: each file read back in the worker's chunks, one read
    ahead, and hashed (SHA-256), one file after another as the worker does."""
    began = time.perf_counter()
    with ThreadPoolExecutor(1, thread_name_prefix="bare-hash") as reader:
        for source in model.files:
            blob = container.get_blob_client(f"{prefix}/{source.target}")

            def read(offset: int, blob: BlobClient = blob, size: int = source.size) -> bytes:
                length = min(HASH_CHUNK_BYTES, size - offset)
                return bytes(blob.download_blob(offset=offset, length=length).readall())

            digest = hashlib.sha256()
            ahead = reader.submit(read, 0) if source.size else None
            offset = 0
            while ahead is not None:
                chunk = ahead.result()
                offset += len(chunk)
                ahead = reader.submit(read, offset) if offset < source.size else None
                digest.update(chunk)
    return time.perf_counter() - began


@dataclass(frozen=True)
class WorkerCopy:
    began: float  # time.perf_counter() when the worker was first called (after the registration)
    finished: float  # when it returned FINISHED
    invocations: int
    prefix: str  # where the registration's files are in the registry's container
    size: int  # the model's bytes
    timeline: Timeline  # its commits, reads back and digests, seen through the proxies

    @property
    def seconds(self) -> float:
        """The whole copy: to Finished, verification included."""
        return self.finished - self.began

    @property
    def copy_seconds(self) -> float:
        """The copy alone: to the last Put Block List."""
        return self.timeline.last_commit - self.began

    @property
    def added_seconds(self) -> float:
        """From the last Put Block List to Finished: reading back, hashing, the manifest."""
        return self.finished - self.timeline.last_commit

    @property
    def hash_rate(self) -> float:
        """The model's MiB per second of the hashing phase (its first read to its last digest
        recorded); were a part read back twice (a continuation mid-file), that costs time here."""
        return _mib_per_s(self.size, self.timeline.hashing_seconds)

    def phases(self) -> dict[str, float]:
        t = self.timeline
        return {
            "copy": round(t.last_commit - self.began, 2),
            "last_commit_to_first_read": round(t.hashing_began - t.last_commit, 3),
            "hashing": round(t.hashing_seconds, 2),
            "last_digest_to_finished": round(self.finished - t.hashing_ended, 3),
        }


def worker_copy(deps: Dependencies, version: str, model: Model) -> WorkerCopy:
    registration = register_model(deps, version, model.urls)
    timeline = Timeline()
    began = time.perf_counter()
    run = copy_to_the_end(timed(deps, timeline), registration)
    finished = time.perf_counter()
    prefix = registration.blob_path("").rstrip("/")
    return WorkerCopy(began, finished, run.invocations, prefix, model.size, timeline)


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
        policy = CopyPolicy.of(deps)
        connection = azurite.connection_string()
        models = ContainerClient.from_connection_string(connection, deps.settings.models_container)
        bare = ContainerClient.from_connection_string(connection, BARE_CONTAINER)
        bare.create_container()

        bare_seconds: list[tuple[float, float]] = []  # copying, then hashing
        # A cross-check of hash_throughput: bare_hash of each worker copy, right after the worker hashed it.
        paired_seconds: list[float] = []
        copies: list[WorkerCopy] = []
        # Alternate (bare, worker, worker, bare, ...) so that drift in the machine's load favours neither.
        order = (["bare", "worker", "worker", "bare"] * plan.rounds)[: 2 * plan.rounds]
        for step, side in enumerate(order):
            if side == "bare":
                prefix = f"round{step}"
                copy_seconds = bare_copy(bare, prefix, large, policy.block_size, policy.concurrency)
                _check_sizes(bare, prefix, large)
                bare_seconds.append((copy_seconds, bare_hash(bare, prefix, large)))
            else:
                copies.append(worker_copy(deps, f"1.{step}", large))
                _check_sizes(models, copies[-1].prefix, large)
                paired_seconds.append(bare_hash(models, copies[-1].prefix, large))
        # The bytes, not just the sizes: one whole file of the worker's last copy, hashed.
        checked = large.largest
        md5 = md5_of_blob(models, f"{copies[-1].prefix}/{checked.target}")
        if md5 != checked.md5:
            raise RuntimeError(f"the worker's copy of {checked.target} differs from its source (MD5)")

        small_memory = probe_memory(settings, "2.0", small)
        large_memory = probe_memory(settings, "2.1", large)

    worker_rate = max(_mib_per_s(large.size, c.seconds) for c in copies)
    bare_rate = max(_mib_per_s(large.size, copy + hash) for copy, hash in bare_seconds)
    copy_figure = Figure(
        key="copy_throughput",
        label=f"worker copy + verification of a {large.size / MIB:.0f} MiB model "
        f"({plan.files + len(SMALL_FILES)} files)",
        unit="MiB/s",
        value=worker_rate,
        baseline=bare_rate,
        baseline_label="bare copy + hash loop",
        target=">= 0.9",
        details={
            "baseline_is": "stage_block_from_url + commit_block_list, same block size and concurrency, "
            "then each file read back in the worker's chunks (one ahead) and hashed (SHA-256)",
            "model_bytes": large.size,
            "block_size_mib": policy.block_size / MIB,
            "concurrency": policy.concurrency,
            "worker_seconds": [round(c.seconds, 2) for c in copies],
            "worker_phases_seconds": [c.phases() for c in copies],
            "bare_seconds": [round(copy + hash, 2) for copy, hash in bare_seconds],
            "bare_copy_seconds": [round(copy, 2) for copy, _ in bare_seconds],
            "bare_hash_seconds": [round(hash, 2) for _, hash in bare_seconds],
            "worker_invocations": [c.invocations for c in copies],
            "verified": f"MD5 of {checked.target} ({checked.size / MIB:.0f} MiB) matches its source",
            "upload_seconds": round(upload_seconds, 1),
        },
    )
    small_rss, large_rss = small_memory["peak_rss_mib"], large_memory["peak_rss_mib"]
    memory_figure = Figure(
        key="copy_peak_memory",
        label=f"worker peak RSS copying + verifying {large.size / MIB:.0f} MiB",
        unit="MiB",
        value=large_rss,
        baseline=small_rss,
        baseline_label=f"copying + verifying {small.size / MIB:.0f} MiB",
        target="<= 1.5",
        details={
            "measured_by": "peak RSS (VmHWM) of a fresh worker process from the first call to Finished "
            "(the copy, the hashing, the manifest), reset before it; the largest of its phases' peaks",
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
    return [
        copy_figure,
        _hash_throughput(copies, bare_seconds, paired_seconds, large),
        _verification_time(copies, large),
        memory_figure,
        _hash_memory(small_memory, large_memory, small, large),
    ]


def _hash_throughput(
    copies: list[WorkerCopy],
    bare_seconds: list[tuple[float, float]],
    paired_seconds: list[float],
    model: Model,
) -> Figure:
    """The worker's hashing phase in the copies above, against the bare loop's hashing."""
    worker_rate = max(c.hash_rate for c in copies)
    bare_rate = max(_mib_per_s(model.size, hash) for _, hash in bare_seconds)
    return Figure(
        key="hash_throughput",
        label=f"worker verification (read back + SHA-256) of the {model.size / MIB:.0f} MiB model",
        unit="MiB/s",
        value=worker_rate,
        baseline=bare_rate,
        baseline_label="bare download_blob + hashlib loop",
        target=">= 0.9",
        details={
            "measured_by": "the worker's copies above, its ports seen through timing proxies "
            "(bench/verification.py): the model's bytes over the wall clock from the first read_range "
            "of the first file to the set_sha256 of the last (one file after another: the chunk reads, "
            "the hashing, the progress saves every 64 MiB, the digest recorded on each blob); "
            "the best of the rounds",
            "baseline_is": "bare_hash: each file of the bare copy of the same model read back with "
            f"download_blob(offset, length).readall() in {HASH_CHUNK_BYTES // MIB} MiB chunks (one read "
            "ahead, as the worker) and hashed with hashlib.sha256, file after file; the best of the rounds",
            "worker_hashing_seconds": [round(c.timeline.hashing_seconds, 2) for c in copies],
            "worker_hashing_per_file_seconds_summed": [round(c.timeline.per_file_seconds, 2) for c in copies],
            "worker_mib_per_s": [round(c.hash_rate, 1) for c in copies],
            "worker_bytes_read_back": [c.timeline.bytes_read for c in copies],
            "worker_hashing_after_last_commit": [c.timeline.hashing_after_last_commit for c in copies],
            "bare_hash_seconds": [round(hash, 2) for _, hash in bare_seconds],
            "bare_mib_per_s": [round(_mib_per_s(model.size, hash), 1) for _, hash in bare_seconds],
            "paired_is": "a cross-check, not the baseline: bare_hash of each worker copy, run right "
            "after the worker finished it (the same blobs, seconds apart)",
            "paired_bare_mib_per_s": [round(_mib_per_s(model.size, s), 1) for s in paired_seconds],
            "paired_ratios": [
                round(c.hash_rate / _mib_per_s(model.size, s), 3)
                for c, s in zip(copies, paired_seconds, strict=True)
            ],
            "model_bytes": model.size,
            "files": len(model.files),
        },
    )


def _verification_time(copies: list[WorkerCopy], model: Model) -> Figure:
    """What verification adds to the time to Finished, in the fastest of the worker's copies."""
    fastest = min(copies, key=lambda c: c.seconds)
    return Figure(
        key="verification_time",
        label=f"time verification adds before Finished, {model.size / MIB:.0f} MiB model",
        unit="s",
        value=fastest.added_seconds,
        baseline=fastest.copy_seconds,
        baseline_label="the copy alone",
        target=REPORT_ONLY,
        details={
            "measured_by": "in the fastest of the worker's copies above (the one copy_throughput "
            "reports), the wall clock from the return of the last Put Block List (BlobCopier.commit) "
            "to process_job returning FINISHED: reading every file back and hashing it, recording the "
            "digests, the manifest revision (signed), the end of the registration and its listing",
            "baseline_is": "the same copy's wall clock from the worker's first call to the return "
            "of its last Put Block List",
            "phases_seconds": fastest.phases(),
            "added_seconds": [round(c.added_seconds, 2) for c in copies],
            "copy_seconds": [round(c.copy_seconds, 2) for c in copies],
            "ratios": [round(c.added_seconds / c.copy_seconds, 3) for c in copies],
        },
    )


def _hash_memory(
    small: dict[str, Any], large: dict[str, Any], small_model: Model, large_model: Model
) -> Figure:
    """The worker's peak RSS during its hashing phase alone, large model against small."""
    return Figure(
        key="hash_peak_memory",
        label=f"worker peak RSS hashing {large_model.size / MIB:.0f} MiB",
        unit="MiB",
        value=large["hash_peak_rss_mib"],
        baseline=small["hash_peak_rss_mib"],
        baseline_label=f"hashing {small_model.size / MIB:.0f} MiB",
        target="<= 1.5",
        details={
            "measured_by": "in the fresh processes of copy_peak_memory (bench/copy_probe.py), VmHWM "
            "reset (clear_refs) just before the worker's first read back of a file, read when the "
            "digest of its last file was recorded",
            "target_means": "hashing reads in bounded chunks: its memory does not grow with the files",
            "hash_chunk_mib": HASH_CHUNK_BYTES / MIB,
            "file_mib": {
                "small": round(small_model.largest.size / MIB, 1),
                "large": round(large_model.largest.size / MIB, 1),
            },
            "rss_at_hash_start_mib": {
                "small": round(small["rss_at_hash_start_mib"], 1),
                "large": round(large["rss_at_hash_start_mib"], 1),
            },
            "peak_rss_growth_mib": {
                "small": round(small["hash_peak_rss_mib"] - small["rss_at_hash_start_mib"], 1),
                "large": round(large["hash_peak_rss_mib"] - large["rss_at_hash_start_mib"], 1),
            },
            "traced_peak_mib": {
                "small": round(small["hash_traced_peak_mib"], 3),
                "large": round(large["hash_traced_peak_mib"], 3),
            },
            "hash_seconds": {
                "small": round(small["hash_seconds"], 2),
                "large": round(large["hash_seconds"], 2),
            },
            "hashing_after_last_commit": small["hashing_after_last_commit"]
            and large["hashing_after_last_commit"],
        },
    )
