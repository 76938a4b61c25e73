"""Each storage adapter against the real emulator."""

from __future__ import annotations

import base64
import dataclasses
import os
from datetime import timedelta
from typing import Any

import pytest
from azure.storage.blob import ContainerClient
from azure.storage.queue import QueueClient

from registry.adapters.queues import StorageJobQueue
from registry.domain.errors import AlreadyExists, ConcurrentUpdate, SourceError
from registry.domain.jobs import CopyJob
from registry.domain.model import FileProgress, Registration, utcnow
from registry.domain.vocabulary import FileState, State
from registry.services.dependencies import Dependencies
from tests.conftest import Sources

pytestmark = pytest.mark.integration


def _registration(name: str = "bert", files: int = 3, **changes: Any) -> Registration:
    now = utcnow()
    registration = Registration(
        owner="alice",
        name=name,
        version="1.0",
        owner_name="Alice",
        registration_id="r1",
        state=State.IN_PROGRESS,
        message="accepted",
        private=True,
        model_type="ENCODER",
        description="d",
        body_digest="digest",
        document={"model_metainfo": {"input_description": "x" * 200_000}},
        file_names=[f"dir/file-{i}.bin" for i in range(files)],
        sealed=os.urandom(150_000),
        created_at=now,
        updated_at=now,
        last_progress_at=now,
    )
    return dataclasses.replace(registration, **changes)


def test_table_store_round_trips_a_registration_larger_than_one_table_property(deps: Dependencies) -> None:
    original = _registration(files=1000)
    deps.store.insert(original)

    loaded = deps.store.get("alice", "bert", "1.0")

    assert loaded == original
    assert loaded is not None
    assert loaded.etag


def test_table_store_refuses_a_second_insert_and_a_stale_replace(deps: Dependencies) -> None:
    first = deps.store.insert(_registration())
    with pytest.raises(AlreadyExists):
        deps.store.insert(_registration())
    stale = deps.store.get("alice", "bert", "1.0")
    assert stale is not None
    first.message = "moved on"
    deps.store.replace(first)

    stale.message = "overwrites?"
    with pytest.raises(ConcurrentUpdate):
        deps.store.replace(stale)
    current = deps.store.get("alice", "bert", "1.0")
    assert current is not None
    assert current.message == "moved on"


def test_table_store_keeps_file_progress_in_batches_with_etag_checks(deps: Dependencies) -> None:
    registration = deps.store.insert(_registration(files=150))
    deps.store.insert_files(registration, [FileProgress(i, t) for i, t in enumerate(registration.file_names)])

    files = deps.store.files(registration)
    assert [f.target for f in files] == registration.file_names
    first = files[0]
    first.state, first.bytes_copied, first.size = FileState.COPYING, 10, 100
    deps.store.replace_file(registration, first)
    stale = deps.store.files(registration)[0]
    deps.store.replace_file(registration, first)
    with pytest.raises(ConcurrentUpdate):
        deps.store.replace_file(registration, stale)

    deps.store.forget_files(registration)
    deps.store.delete(registration)
    assert deps.store.get("alice", "bert", "1.0") is None
    assert deps.store.files(registration) == []


def test_table_store_finds_only_quiet_in_progress_registrations(deps: Dependencies) -> None:
    old = utcnow() - timedelta(hours=1)
    deps.store.insert(_registration("quiet", last_progress_at=old))
    deps.store.insert(_registration("busy"))
    deps.store.insert(_registration("done", last_progress_at=old, state=State.FINISHED))

    stale = list(deps.store.in_state(State.IN_PROGRESS, utcnow() - timedelta(minutes=5)))

    assert [r.name for r in stale] == ["quiet"]


def test_job_queue_sends_base64_json_that_the_functions_trigger_decodes(deps: Dependencies) -> None:
    assert isinstance(deps.queue, StorageJobQueue)  # the Storage queue adapter (build created its queue)
    job = CopyJob("alice", "bert", "1.0", "r1")
    deps.queue.send(job)
    deps.queue.send(job, delay_seconds=60)

    # Read the raw queue, as the Functions host does.
    assert deps.settings.storage_connection_string is not None
    raw = QueueClient.from_connection_string(
        deps.settings.storage_connection_string, deps.settings.jobs_queue
    )
    messages = list(raw.receive_messages(max_messages=32))

    assert len(messages) == 1, "the delayed message must stay invisible"
    assert CopyJob.from_json(base64.b64decode(messages[0].content)) == job


def test_blob_copier_copies_a_range_of_blocks_and_commits_them(deps: Dependencies, sources: Sources) -> None:
    data = os.urandom(3 * 1024 * 1024 + 5)
    url = sources.upload("weights.bin", data)
    info = deps.copier.source_info(url)
    assert info.size == len(data)
    assert info.etag
    assert info.content_md5

    ids = [base64.b64encode(f"b{i}".encode()).decode() for i in range(2)]
    half = len(data) // 2
    deps.copier.stage_block("a/m/1/w.bin", ids[0], url, 0, half)
    assert deps.copier.staged_blocks("a/m/1/w.bin") == {ids[0]: half}
    deps.copier.stage_block("a/m/1/w.bin", ids[1], url, half, len(data) - half)
    assert deps.copier.committed_size("a/m/1/w.bin", ids) is None

    assert deps.copier.commit("a/m/1/w.bin", ids, info.content_md5).size == len(data)
    assert deps.copier.committed_size("a/m/1/w.bin", ids) == len(data)
    container = ContainerClient.from_connection_string(
        str(deps.settings.storage_connection_string), deps.settings.models_container
    )
    assert container.download_blob("a/m/1/w.bin").readall() == data


def test_blob_copier_reports_missing_and_expired_sources_as_permanent(
    deps: Dependencies, sources: Sources
) -> None:
    sources.upload("there.bin", b"x" * 10)
    missing = sources.url("not-there.bin")
    expired = sources.url("there.bin", expiry=timedelta(minutes=-5))

    reasons = {}
    for label, url in (("missing", missing), ("expired", expired)):
        with pytest.raises(SourceError) as head:
            deps.copier.source_info(url)
        with pytest.raises(SourceError) as stage:
            deps.copier.stage_block("a/m/1/x", base64.b64encode(b"b0").decode(), url, 0, 10)
        for error in (head.value, stage.value):
            assert error.permanent
            assert "sig=" not in error.reason
        reasons[label] = stage.value.reason
    assert "404" in reasons["missing"]
    assert "403" in reasons["expired"]
