"""services/registration.py against the in-memory fakes."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import timedelta
from typing import Any

import pytest

from registry.domain.errors import ConcurrentUpdate
from registry.domain.jobs import CopyJob, Job
from registry.domain.model import FileProgress, Registration
from registry.domain.vocabulary import FileState, State
from registry.identity import Principal
from registry.sealing import Sealer
from registry.services.dependencies import Dependencies
from registry.services.models import NotVisible, files_of, find_own
from registry.services.registration import (
    Conflict,
    Unavailable,
    register,
    sealing_binding,
)
from registry.settings import Settings
from registry.validation import InvalidRequest
from tests.builders import DOCKER_PASSWORD, deepdev_example_body, make_settings, registration_body
from tests.fakes import T0, FakeClock, FakeJobQueue, FakeRegistrationStore

ALICE = Principal("alice-oid-0001", "alice@contoso.com")
BOB = Principal("bob-oid-0002", "bob@contoso.com")


@pytest.fixture
def settings() -> Settings:
    return make_settings(REGISTRY_STALE_AFTER_SECONDS="600")


@pytest.fixture
def submit(deps: Dependencies) -> Any:
    def call(
        body: Any = None, *, name: str = "codegen", version: str = "1.0", caller: Principal = ALICE
    ) -> Registration:
        return register(deps, caller, name, version, registration_body() if body is None else body)

    return call


def stored(store: FakeRegistrationStore, caller: Principal = ALICE) -> Registration:
    found = store.peek(caller.id, "codegen", "1.0")
    assert found is not None
    return found


def test_accepted_registration_is_recorded_in_progress_with_one_job(
    submit: Any, store: FakeRegistrationStore, queue: FakeJobQueue
) -> None:
    returned = submit()
    record = stored(store)
    assert record.state is State.IN_PROGRESS
    assert record.owner == ALICE.id
    assert record.owner_name == ALICE.name
    assert record.private is True
    assert record.model_type == "DECODER"
    assert record.file_names == sorted(registration_body()["model_files"])
    assert record.picked_up is False
    assert record.created_at == record.updated_at == record.last_progress_at == T0
    assert queue.jobs == [CopyJob(ALICE.id, "codegen", "1.0", record.registration_id)]
    assert queue.sent[0].delay_seconds == 0
    assert returned.registration_id == record.registration_id


def test_registration_is_recorded_before_its_job_is_sent(
    submit: Any, store: FakeRegistrationStore, queue: FakeJobQueue, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[Registration | None] = []
    original = queue.send

    def send(job: Job, delay_seconds: float = 0) -> None:
        assert isinstance(job, CopyJob)
        seen.append(store.peek(job.owner, job.name, job.version))
        original(job, delay_seconds)

    monkeypatch.setattr(queue, "send", send)
    submit()
    assert seen
    assert seen[0] is not None
    assert seen[0].state is State.IN_PROGRESS


def test_secrets_are_sealed_and_not_in_the_readable_record(
    submit: Any, store: FakeRegistrationStore, sealer: Sealer
) -> None:
    body = deepdev_example_body()
    submit(body, name="codegen", version="1.0")
    record = stored(store)
    readable = {k: v for k, v in asdict(record).items() if k != "sealed"}
    text = json.dumps(readable, default=str)
    assert "sig=" not in text
    assert DOCKER_PASSWORD not in text
    assert "password" not in json.dumps(record.document)
    assert DOCKER_PASSWORD.encode() not in record.sealed
    # The document keeps the sources, without their query strings, and the registry's user name.
    assert (
        record.document["model_files"]["model.pt"]
        == "https://storageaccount.blob.core.windows.net/gptc/checkpoint.pt"
    )
    registry = record.document["model_config"]["inference_properties"]["docker_registry"]
    assert registry == {"url": "mcr.microsoft.com", "username": "foo"}
    secrets = sealer.unseal(record.sealed, sealing_binding(record))
    assert secrets["model_files"] == body["model_files"]
    assert secrets["private_packages"] == body["private_packages"]
    assert secrets["docker_passwords"] == {"inference_properties": DOCKER_PASSWORD}


def test_invalid_body_records_nothing_and_sends_nothing(
    submit: Any, store: FakeRegistrationStore, queue: FakeJobQueue
) -> None:
    with pytest.raises(InvalidRequest):
        submit(registration_body(model_config={"type": "GIANT"}))
    assert store.all() == []
    assert queue.sent == []


def test_identical_replay_before_pickup_re_enqueues(
    submit: Any, store: FakeRegistrationStore, queue: FakeJobQueue, clock: FakeClock
) -> None:
    first = submit()
    clock.advance(5)
    again = submit()
    assert again.registration_id == first.registration_id
    assert len(store.all()) == 1
    assert [j.registration_id for j in queue.jobs] == [first.registration_id] * 2


def test_identical_replay_while_a_worker_is_on_it_sends_no_second_job(
    submit: Any, store: FakeRegistrationStore, queue: FakeJobQueue, clock: FakeClock
) -> None:
    submit()
    clock.advance(60)
    store.update(ALICE.id, "codegen", "1.0", picked_up=True, last_progress_at=clock())
    clock.advance(599)
    submit()
    assert len(queue.sent) == 1


def test_identical_replay_re_enqueues_when_the_worker_went_quiet(
    submit: Any, store: FakeRegistrationStore, queue: FakeJobQueue, clock: FakeClock
) -> None:
    submit()
    store.update(ALICE.id, "codegen", "1.0", picked_up=True, last_progress_at=clock())
    clock.advance(601)
    submit()
    assert len(queue.sent) == 2


def test_replay_with_defaults_spelled_out_is_identical(
    submit: Any, store: FakeRegistrationStore, queue: FakeJobQueue
) -> None:
    submit()
    body = registration_body()
    body["model_config"].update(private=True, name="codegen", version="1.0", owner=ALICE.id)
    reordered = {k: body[k] for k in reversed(list(body))}
    submit(reordered)
    assert len(store.all()) == 1
    assert len(queue.sent) == 2


def test_identical_replay_of_a_finished_registration_sends_nothing(
    submit: Any, store: FakeRegistrationStore, queue: FakeJobQueue
) -> None:
    submit()
    store.update(ALICE.id, "codegen", "1.0", state=State.FINISHED, picked_up=True)
    again = submit()
    assert again.state is State.FINISHED
    assert len(queue.sent) == 1


def test_different_body_is_a_conflict(submit: Any, store: FakeRegistrationStore, queue: FakeJobQueue) -> None:
    submit()
    before = stored(store)
    changed = registration_body()
    changed["model_metainfo"]["num_params"] = 7
    with pytest.raises(Conflict):
        submit(changed)
    assert stored(store) == before
    assert len(queue.sent) == 1


def test_different_source_sas_is_a_conflict(submit: Any) -> None:
    submit()
    changed = registration_body()
    changed["model_files"]["score.py"] += "x"
    with pytest.raises(Conflict):
        submit(changed)


def test_other_callers_have_their_own_registrations(
    submit: Any, store: FakeRegistrationStore, queue: FakeJobQueue, deps: Dependencies
) -> None:
    submit()
    changed = registration_body()
    changed["model_metainfo"]["num_params"] = 7
    submit(changed, caller=BOB)
    assert {r.owner for r in store.all()} == {ALICE.id, BOB.id}
    assert len(queue.sent) == 2
    assert find_own(deps, BOB, "codegen", "1.0") is not None
    with pytest.raises(NotVisible):
        find_own(deps, Principal("carol", "carol"), "codegen", "1.0")


def test_enqueue_failure_is_unavailable_and_leaves_no_record(
    submit: Any, store: FakeRegistrationStore, queue: FakeJobQueue
) -> None:
    queue.failing = True
    with pytest.raises(Unavailable):
        submit()
    assert store.all() == []
    queue.failing = False
    submit()  # and a retry then succeeds
    assert stored(store).state is State.IN_PROGRESS
    assert len(queue.sent) == 1


def test_storage_failure_is_unavailable(
    submit: Any, store: FakeRegistrationStore, queue: FakeJobQueue
) -> None:
    store.unavailable.add("insert")
    with pytest.raises(Unavailable):
        submit()
    assert store.all() == []
    assert queue.sent == []


def test_storage_failure_on_replay_is_unavailable(
    submit: Any, store: FakeRegistrationStore, deps: Dependencies
) -> None:
    submit()
    store.unavailable.add("get")
    with pytest.raises(Unavailable):
        submit()
    with pytest.raises(Unavailable):
        find_own(deps, ALICE, "codegen", "1.0")


def test_failed_registration_with_identical_replay_restarts_with_one_new_job(
    submit: Any, store: FakeRegistrationStore, queue: FakeJobQueue, clock: FakeClock
) -> None:
    first = submit()
    store.update(
        ALICE.id,
        "codegen",
        "1.0",
        state=State.FAILED,
        message="Copying 'score.py' failed: the source does not exist (404)",
        picked_up=True,
        last_error="boom",
    )
    queue.take()
    clock.advance(30)
    again = submit()
    record = stored(store)
    assert record.state is State.IN_PROGRESS
    assert record.registration_id == first.registration_id
    assert record.attempt == 2
    assert record.last_error == ""
    assert record.picked_up is False
    assert record.last_progress_at == T0 + timedelta(seconds=30)
    assert again.state is State.IN_PROGRESS
    assert queue.jobs == [
        CopyJob(ALICE.id, "codegen", "1.0", first.registration_id, "restart", record.attempt)
    ]


def test_failed_registration_with_different_body_is_a_conflict(
    submit: Any, store: FakeRegistrationStore, queue: FakeJobQueue
) -> None:
    submit()
    store.update(ALICE.id, "codegen", "1.0", state=State.FAILED)
    changed = registration_body()
    changed["model_metainfo"]["num_params"] = 7
    with pytest.raises(Conflict):
        submit(changed)
    assert stored(store).state is State.FAILED


def test_failed_restart_with_enqueue_failure_leaves_nothing_in_progress_without_a_job(
    submit: Any, store: FakeRegistrationStore, queue: FakeJobQueue
) -> None:
    submit()
    store.update(ALICE.id, "codegen", "1.0", state=State.FAILED)
    queue.failing = True
    with pytest.raises(Unavailable):
        submit()
    assert stored(store).state is State.FAILED


def test_status_files_list_every_file_with_its_progress(
    submit: Any, store: FakeRegistrationStore, deps: Dependencies
) -> None:
    record = submit()
    index = record.file_names.index("env.yml")
    done = FileProgress(index=index, target="env.yml", state=FileState.FINISHED, size=10, bytes_copied=10)
    store.insert_files(record, [done])
    statuses = files_of(deps, record)
    assert [s.target for s in statuses] == record.file_names
    by_name = {s.target: s for s in statuses}
    assert by_name["env.yml"].state == "Finished"
    assert by_name["env.yml"].bytes_copied == 10
    assert by_name["score.py"].state == "Pending"
    assert by_name["score.py"].size is None


def test_a_replay_racing_a_failed_enqueue_keeps_the_record_it_answered_for(
    submit: Any, store: FakeRegistrationStore, queue: FakeJobQueue
) -> None:
    first = submit()  # request A: recorded and enqueued
    as_a_saw_it = stored(store)  # A's copy, whose ETag A's undo would delete with
    queue.take()

    submit()  # request B replays before any worker picked it up: 202 and a job

    with pytest.raises(ConcurrentUpdate):
        store.delete(as_a_saw_it)  # A's undo after a failed enqueue now deletes nothing
    assert stored(store).registration_id == first.registration_id
    assert [job.registration_id for job in queue.jobs] == [first.registration_id]
