"""bench/verification.py: the timing proxies the copy benchmark sees the worker's phases through.

The worker runs on the fakes, its ports behind the proxies: they pass every call through, and the
timeline they fill tells the copy, the hashing and the rest apart.
"""

from __future__ import annotations

import hashlib
import random

from bench.verification import Timeline, timed
from registry.domain.vocabulary import FileState, State
from registry.identity import Principal
from registry.services.copying import HASH_CHUNK_BYTES, MIB, Outcome, process_job
from registry.services.registration import job_for, register
from tests.builders import make_deps, registration_body, source_url
from tests.fakes import FakeBlobCopier, FakeJobQueue, FakeRegistrationStore

ALICE = Principal("alice-oid-0001", "alice@contoso.com")


def test_the_proxies_pass_the_worker_through_and_time_its_phases() -> None:
    blobs, store = FakeBlobCopier(), FakeRegistrationStore()
    deps = make_deps(store=store, queue=FakeJobQueue(), blobs=blobs)
    files = {
        "score.py": b"def init():\n    pass\n",
        "env.yml": b"name: env\n",
        "index.md": b"# Model\n",
        "weights/model.bin": random.Random(1).randbytes(HASH_CHUNK_BYTES + MIB // 2),  # two reads
    }
    body = registration_body()
    body["model_files"] = {target: source_url(target) for target in files}
    for target, data in files.items():
        blobs.put_source(body["model_files"][target], data)
    registration = register(deps, ALICE, "codegen", "1.0", body)

    calls: list[str] = []
    timeline = Timeline(
        on_hashing_start=lambda: calls.append("start"),
        on_file_hashed=lambda count: calls.append(f"hashed {count}"),
    )
    assert process_job(job_for(registration), timed(deps, timeline)) is Outcome.FINISHED

    record = store.peek(ALICE.id, "codegen", "1.0")
    assert record is not None and record.state is State.FINISHED
    rows = store.peek_files(record)
    assert {row.target: row.served_sha256 for row in rows if row.state is FileState.FINISHED} == {
        target: hashlib.sha256(data).hexdigest() for target, data in files.items()
    }
    assert calls == ["start", "hashed 1", "hashed 2", "hashed 3", "hashed 4"]
    assert len(timeline.commits) == len(files)
    assert timeline.bytes_read == sum(len(data) for data in files.values())
    assert timeline.files[registration.blob_path("weights/model.bin")].reads == 2
    assert timeline.hashing_after_last_commit
    assert 0 <= timeline.per_file_seconds <= timeline.hashing_seconds
