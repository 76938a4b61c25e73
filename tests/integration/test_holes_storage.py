"""Issue 8's interleavings against the real emulator: a delete under a worker, a delete that
fails half-way, a re-registration of the same name; and sources that redirect."""

from __future__ import annotations

import base64
import dataclasses
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from azure.storage.queue import QueueClient

from registry.adapters.blobs import AzureBlobCopier
from registry.domain.errors import SourceError, StorageUnavailable
from registry.domain.jobs import CopyJob, parse_job
from registry.domain.listing import ModelFilter
from registry.domain.model import Registration
from registry.domain.vocabulary import State
from registry.identity import Principal
from registry.ports import ModelFiles
from registry.services import models as service
from registry.services.copying import Outcome, process_job
from registry.services.dependencies import Dependencies
from registry.services.jobs import handle_message
from registry.services.registration import Unavailable, register
from registry.services.sweep import sweep
from tests.conftest import Sources

pytestmark = pytest.mark.integration
MIB = 1024 * 1024
ALICE = Principal("alice", "Alice")


def _body(sources: Sources, tag: str, weights: bytes) -> dict[str, Any]:
    files = {
        "score.py": b"def init(d): pass\n",
        "env.yml": b"name: e\n",
        "index.md": b"# m\n",
        "w.bin": weights,
    }
    return {
        "model_config": {
            "type": "ENCODER",
            "inference_properties": {"entry_script": "score.py", "conda_env": "env.yml"},
        },
        "model_files": {name: sources.upload(f"{tag}/{name}", data) for name, data in files.items()},
        "model_metainfo": {
            "input_types": ["OTHER"],
            "output_types": ["OTHER"],
            "input_description": "x",
            "output_description": "y",
            "num_params": 1,
            "index_page_file": "index.md",
        },
    }


def _copy(deps: Dependencies) -> list[Outcome]:
    """Run every job on the real queue to the end, as the trigger would."""
    client = QueueClient.from_connection_string(
        str(deps.settings.storage_connection_string), deps.settings.jobs_queue
    )
    outcomes: list[Outcome] = []
    for _ in range(50):
        messages = list(client.receive_messages(max_messages=32))
        if not messages:
            return outcomes
        for message in messages:
            job = parse_job(base64.b64decode(message.content))
            if isinstance(job, CopyJob):
                outcomes.append(process_job(job, deps))
            else:  # an owner's events to dispatch (a PATCH or DELETE asks for that)
                handle_message(job.to_json(), deps, redelivered=False)
            client.delete_message(message)
    raise AssertionError("the queue never drained")


def _stored(deps: Dependencies, registration: Registration, target: str) -> bytes | None:
    return deps.files.read(registration.blob_path(target), 64 * MIB)


def test_a_delete_under_a_worker_leaves_nothing_that_a_new_registration_of_the_name_trusts(
    deps: Dependencies, sources: Sources
) -> None:
    register(deps, ALICE, "bert", "1.0", _body(sources, "old", os.urandom(3 * MIB)))
    old = deps.store.get("alice", "bert", "1.0")
    assert old is not None

    class DeleteOnFirstRowsRead:
        """The store, with the owner's DELETE landing right after the worker took its lease."""

        def __init__(self, inner: Any) -> None:
            self.inner, self.done = inner, False

        def __getattr__(self, name: str) -> Any:
            return getattr(self.inner, name)

        def files(self, registration: Registration) -> Any:
            if not self.done:
                self.done = True
                service.delete_model(deps, ALICE, "bert", "1.0")
            return self.inner.files(registration)

    racing = dataclasses.replace(deps, store=DeleteOnFirstRowsRead(deps.store))
    assert _copy(racing) in ([Outcome.LOST], [Outcome.IGNORED])
    assert deps.store.get("alice", "bert", "1.0") is None
    assert deps.store.files(old) == []
    assert deps.files.delete_prefix(old.blob_prefix) == 0  # nothing was left behind to delete

    new_weights = os.urandom(2 * MIB + 5)
    register(deps, ALICE, "bert", "1.0", _body(sources, "new", new_weights))
    assert _copy(deps) == [Outcome.FINISHED]
    new = deps.store.get("alice", "bert", "1.0")
    assert new is not None and new.state is State.FINISHED
    assert _stored(deps, new, "w.bin") == new_weights
    assert all(f.bytes_copied == f.size for f in deps.store.files(new))


class FailingOnce:
    """The registry's container, whose next delete fails as a passing storage error would."""

    def __init__(self, inner: ModelFiles) -> None:
        self.inner, self.failures = inner, 1

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def delete_prefix(self, prefix: str) -> int:
        if self.failures:
            self.failures -= 1
            raise StorageUnavailable("blob storage answered 503")
        return self.inner.delete_prefix(prefix)


def test_a_delete_that_fails_half_way_is_finished_by_a_retry_and_a_new_registration_starts_clean(
    deps: Dependencies, sources: Sources
) -> None:
    register(deps, ALICE, "bert", "1.0", _body(sources, "a", os.urandom(MIB)))
    assert _copy(deps) == [Outcome.FINISHED]
    old = deps.store.get("alice", "bert", "1.0")
    assert old is not None
    flaky = dataclasses.replace(deps, files=FailingOnce(deps.files))

    with pytest.raises(Unavailable):
        service.delete_model(flaky, ALICE, "bert", "1.0")
    tombstone = deps.store.get("alice", "bert", "1.0")
    assert tombstone is not None and tombstone.state is State.DELETING
    with pytest.raises(service.NotVisible):
        service.find_own(deps, ALICE, "bert", "1.0")
    assert [m.name for m in deps.store.own_models("alice", "", ModelFilter())] == []

    service.delete_model(flaky, ALICE, "bert", "1.0")  # the retried DELETE finishes it
    assert deps.store.get("alice", "bert", "1.0") is None
    assert _stored(deps, old, "w.bin") is None

    weights = os.urandom(MIB + 3)
    register(deps, ALICE, "bert", "1.0", _body(sources, "b", weights))
    assert _copy(deps) == [Outcome.FINISHED]
    new = deps.store.get("alice", "bert", "1.0")
    assert new is not None and _stored(deps, new, "w.bin") == weights


def test_the_sweep_finishes_a_delete_left_half_way(deps: Dependencies, sources: Sources) -> None:
    register(deps, ALICE, "bert", "2.0", _body(sources, "c", os.urandom(MIB)))
    assert _copy(deps) == [Outcome.FINISHED]
    old = deps.store.get("alice", "bert", "2.0")
    assert old is not None
    with pytest.raises(Unavailable):
        service.delete_model(dataclasses.replace(deps, files=FailingOnce(deps.files)), ALICE, "bert", "2.0")
    assert sweep(deps).deleted >= 1
    assert deps.store.get("alice", "bert", "2.0") is None
    assert _stored(deps, old, "w.bin") is None


# -- sources that redirect ---------------------------------------------------------------------------


@pytest.fixture
def redirecting() -> Iterator[tuple[str, list[str]]]:
    """A server whose blob answers 302 to a second path of its own; returns (url, paths asked)."""
    asked: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            asked.append(self.path)
            if self.path.startswith("/acct/c/model.bin"):
                self.send_response(302)
                self.send_header("Location", f"http://127.0.0.1:{server.server_port}/metadata/secret")
                self.send_header("Content-Length", "0")
                self.end_headers()
            else:
                self.send_response(200)
                self.send_header("Content-Length", "5")
                self.send_header("ETag", '"0x1"')
                self.end_headers()

        do_HEAD = do_GET = _answer  # noqa: N815 - http.server's names

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/acct/c/model.bin?sig=abc", asked
    finally:
        server.shutdown()


def test_a_source_that_redirects_is_refused_and_the_redirect_is_never_followed(
    deps: Dependencies, redirecting: tuple[str, list[str]]
) -> None:
    url, asked = redirecting
    assert isinstance(deps.copier, AzureBlobCopier)
    with pytest.raises(SourceError) as refused:
        deps.copier.source_info(url)
    assert refused.value.permanent
    assert "redirect" in refused.value.reason
    assert all(path.startswith("/acct/c/model.bin") for path in asked), asked  # never /metadata
