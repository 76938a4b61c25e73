"""The copy worker against the real emulator: bytes, resumption, duplicates, failures, budgets."""

from __future__ import annotations

import dataclasses
import os
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from azure.storage.queue import QueueClient

from registry.domain.errors import SourceError
from registry.domain.jobs import CopyJob
from registry.domain.model import Registration, utcnow
from registry.domain.vocabulary import State
from registry.identity import Principal
from registry.ports import BlobCopier
from registry.services.copying import CopyPolicy, Outcome, fail_poisoned, process_job
from registry.services.dependencies import Dependencies
from registry.services.registration import job_for, register, sealing_binding
from tests.conftest import Sources

pytestmark = pytest.mark.integration
MIB = 1024 * 1024
ALICE = Principal("alice", "Alice")


class Crash(BaseException):
    """Stands in for the process dying: nothing in the worker catches it."""


class CountingCopier:
    """The real copier, counting Put Block From URL calls; it can 'die' after some of them."""

    def __init__(self, inner: BlobCopier, crash_after: int | None = None) -> None:
        self.inner = inner
        self.crash_after = crash_after
        self.staged = 0
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def stage_block(self, path: str, block_id: str, url: str, offset: int, length: int) -> None:
        with self._lock:
            if self.crash_after is not None and self.staged >= self.crash_after:
                raise Crash()
            self.staged += 1
        self.inner.stage_block(path, block_id, url, offset, length)


def _register(
    deps: Dependencies, sources: Sources, files: dict[str, bytes], version: str = "1.0"
) -> Registration:
    urls = {name: sources.upload(name, data) for name, data in files.items()}
    urls |= {"score.py": sources.upload("score.py", b"def init(d): pass\n")}
    urls |= {"env.yml": sources.upload("env.yml", b"name: env\n")}
    urls |= {"index.md": sources.upload("index.md", b"# model\n")}
    body = {
        "model_config": {
            "type": "ENCODER",
            "inference_properties": {"entry_script": "score.py", "conda_env": "env.yml"},
        },
        "model_files": urls,
        "model_metainfo": {
            "input_types": ["OTHER"],
            "output_types": ["OTHER"],
            "input_description": "tensors",
            "output_description": "tensors",
            "num_params": 1000,
            "index_page_file": "index.md",
        },
    }
    return register(deps, ALICE, "bert", version, body)


def _run(
    deps: Dependencies,
    job: CopyJob,
    *,
    copier: BlobCopier | None = None,
    policy: CopyPolicy | None = None,
    now: Callable[[], datetime] = utcnow,
) -> Outcome:
    wired = dataclasses.replace(deps, copier=copier or deps.copier, now=now)
    return process_job(job, wired, policy=policy)


def _committed(deps: Dependencies, registration: Registration, target: str) -> bytes:
    data = deps.files.read(registration.blob_path(target), 1 << 30)
    assert data is not None
    return data


def test_multi_block_files_are_copied_byte_identically(deps: Dependencies, sources: Sources) -> None:
    files = {"weights.bin": os.urandom(5 * MIB + 123), "nested/tok.json": os.urandom(MIB), "empty.txt": b""}
    registration = _register(deps, sources, files)

    assert _run(deps, job_for(registration)) is Outcome.FINISHED

    finished = deps.store.get("alice", "bert", "1.0")
    assert finished is not None
    assert finished.state is State.FINISHED
    sealed = deps.sealer.unseal(finished.sealed, sealing_binding(finished))
    assert sealed["model_files"] == {}, "the SAS tokens are dropped once the copy is done"
    for target, data in files.items():
        assert _committed(deps, registration, target) == data
    assert all(f.bytes_copied == f.size for f in deps.store.files(finished))


def test_an_interrupted_copy_resumes_and_stages_only_the_missing_blocks(
    deps: Dependencies, sources: Sources
) -> None:
    data = os.urandom(10 * MIB)  # ten 1 MiB blocks
    registration = _register(deps, sources, {"weights.bin": data})
    serial = dataclasses.replace(CopyPolicy.of(deps), concurrency=1)
    # The three small files come first (sorted by name) and take one block each.
    dying = CountingCopier(deps.copier, crash_after=3 + 4)
    with pytest.raises(Crash):
        _run(deps, job_for(registration), copier=dying, policy=serial)
    staged_before = len(deps.copier.staged_blocks(registration.blob_path("weights.bin")))
    assert staged_before == 4

    # The dead worker's lease runs out; the redelivered message resumes.
    later = utcnow() + timedelta(seconds=serial.lease_seconds + 1)
    resumed = CountingCopier(deps.copier)
    assert (
        _run(deps, job_for(registration), copier=resumed, policy=serial, now=lambda: later)
        is Outcome.FINISHED
    )

    assert resumed.staged == 10 - staged_before
    assert _committed(deps, registration, "weights.bin") == data


def test_a_duplicate_message_while_a_worker_holds_the_lease_copies_nothing(
    deps: Dependencies, sources: Sources
) -> None:
    registration = _register(deps, sources, {"weights.bin": os.urandom(2 * MIB)})
    dying = CountingCopier(deps.copier, crash_after=0)
    with pytest.raises(Crash):
        _run(deps, job_for(registration), copier=dying)  # holds the lease, then "dies"

    duplicate = CountingCopier(deps.copier)
    assert _run(deps, job_for(registration), copier=duplicate) is Outcome.BUSY
    assert duplicate.staged == 0
    # After the copy finished, the same message again is harmless too.
    later = utcnow() + timedelta(seconds=CopyPolicy.of(deps).lease_seconds + 1)
    assert _run(deps, job_for(registration), now=lambda: later) is Outcome.FINISHED
    assert _run(deps, job_for(registration), copier=duplicate) is Outcome.IGNORED
    assert duplicate.staged == 0


def test_a_missing_source_fails_the_registration_naming_the_file(
    deps: Dependencies, sources: Sources
) -> None:
    registration = _register(deps, sources, {"weights.bin": os.urandom(MIB)})
    sources.container.delete_blob("weights.bin")

    assert _run(deps, job_for(registration)) is Outcome.FAILED

    failed = deps.store.get("alice", "bert", "1.0")
    assert failed is not None
    assert failed.state is State.FAILED
    assert "weights.bin" in failed.message
    assert "404" in failed.message
    assert "sig=" not in failed.message


def test_a_source_overwritten_mid_copy_fails_the_registration(deps: Dependencies, sources: Sources) -> None:
    registration = _register(deps, sources, {"weights.bin": os.urandom(6 * MIB)})
    tight = dataclasses.replace(CopyPolicy.of(deps), concurrency=1)
    dying = CountingCopier(deps.copier, crash_after=3 + 2)
    with pytest.raises(Crash):
        _run(deps, job_for(registration), copier=dying, policy=tight)
    sources.upload("weights.bin", os.urandom(6 * MIB))  # the owner replaces the file

    later = utcnow() + timedelta(seconds=tight.lease_seconds + 1)
    assert _run(deps, job_for(registration), policy=tight, now=lambda: later) is Outcome.FAILED

    failed = deps.store.get("alice", "bert", "1.0")
    assert failed is not None
    assert failed.state is State.FAILED
    assert "weights.bin" in failed.message
    assert "changed" in failed.message


def test_the_time_budget_produces_continuations_that_finish_the_copy(
    deps: Dependencies, sources: Sources
) -> None:
    data = os.urandom(8 * MIB)
    registration = _register(deps, sources, {"weights.bin": data})
    # A clock that advances one second per staged block: a 2.5 s budget stages three blocks.
    counter = CountingCopier(deps.copier)
    policy = dataclasses.replace(CopyPolicy.of(deps), concurrency=1, time_budget_seconds=2.5)

    outcomes = []
    for _ in range(30):
        counted = dataclasses.replace(deps, copier=counter, monotonic=lambda: float(counter.staged))
        outcome = process_job(job_for(registration), counted, policy=policy)
        outcomes.append(outcome)
        if outcome is not Outcome.CONTINUED:
            break

    assert outcomes[-1] is Outcome.FINISHED
    assert outcomes.count(Outcome.CONTINUED) >= 3
    assert counter.staged == 3 + 8, "no block is staged twice across continuations"
    assert _committed(deps, registration, "weights.bin") == data
    raw = QueueClient.from_connection_string(
        str(deps.settings.storage_connection_string), deps.settings.jobs_queue
    )
    queued = raw.get_queue_properties().approximate_message_count
    assert queued == 1 + outcomes.count(Outcome.CONTINUED), "the first job plus one per continuation"


class Unreachable(CountingCopier):
    """Every Put Block From URL fails as if the source kept timing out."""

    def stage_block(self, path: str, block_id: str, url: str, offset: int, length: int) -> None:
        raise SourceError("the source could not be reached (503)", permanent=False)


def test_a_job_that_keeps_failing_is_poisoned_and_its_registration_reads_failed_with_the_reason(
    deps: Dependencies, sources: Sources
) -> None:
    registration = _register(deps, sources, {"weights.bin": os.urandom(MIB)})
    job = job_for(registration)
    for _ in range(3):  # each delivery fails; the host would retry, then poison the message
        with pytest.raises(SourceError):
            _run(deps, job, copier=Unreachable(deps.copier))
        record = deps.store.get("alice", "bert", "1.0")
        assert record is not None and record.state is State.IN_PROGRESS and record.lease_id == ""

    assert fail_poisoned(job.to_json(), deps) is True

    failed = deps.store.get("alice", "bert", "1.0")
    assert failed is not None and failed.state is State.FAILED
    assert "503" in failed.message and "sig=" not in failed.message
