"""Events: every change records its CloudEvent with itself (the outbox), the dispatcher delivers
each at least once with a stable id, and a model's history shows them with the model's visibility."""

from __future__ import annotations

import json

import pytest

from registry.domain.events import Event, EventType
from registry.domain.jobs import DispatchJob
from registry.domain.model import ModelKey
from registry.services import events, history, manifests
from registry.services.copying import Outcome
from registry.services.jobs import handle_message
from registry.services.models import NotVisible
from registry.services.registration import Unavailable, register
from registry.services.sweep import sweep
from registry.validation import InvalidRequest
from tests.builders import SAS, registration_body
from tests.world import ALICE, BIG, BOB, World, payload


@pytest.fixture
def world() -> World:
    return World()


def kinds(received: list[Event]) -> list[str]:
    return [e.type.short for e in received]


def test_every_kind_of_change_reaches_the_sinks_once_with_a_distinct_id(world: World) -> None:
    world.register(private=False)
    world.now.advance(60)
    world.update({"model_config": {"description": "Better"}})
    world.now.advance(60)
    world.update({"model_files": {BIG: world.source(ALICE, "codegen", "v2.bin", payload(1000, 1))}})
    world.run_queue()
    world.now.advance(60)
    world.clone({"parent_owner": ALICE.id, "parent_version": "1.0"})
    world.run_queue()
    world.now.advance(60)
    world.delete()
    received = world.delivered()

    assert sorted(kinds(received)) == sorted(
        ["registered", "finished", "updated", "files_replaced", "finished", "cloned", "finished", "deleted"]
    )
    assert len({e.id for e in received}) == len(received)
    assert world.delivered() == received  # the outbox is empty: nothing is delivered twice


def test_files_replaced_names_who_replaced_them(world: World) -> None:
    world.register()
    world.update({"model_files": {BIG: world.source(ALICE, "codegen", "v2.bin", payload(1000, 1))}})
    [replaced] = [e for e in world.delivered() if e.type is EventType.FILES_REPLACED]
    assert replaced.data["by"] == ALICE.id
    assert replaced.data["files"] == [BIG]


def test_a_failed_copy_is_an_event(world: World) -> None:
    url = world.source(ALICE, "codegen", "broken.bin", b"x")
    world.copier.fail(url, permanent=True, reason="gone")
    body = registration_body()
    body["model_files"]["broken.bin"] = url
    register(world.deps, ALICE, "codegen", "1.0", body)
    assert world.run_queue() == [Outcome.FAILED]
    [failed] = [e for e in world.delivered() if e.type is EventType.FAILED]
    assert "broken.bin" in failed.data["message"]


def test_finished_carries_the_manifest_revision_and_digest(world: World) -> None:
    registration = world.register()
    [finished] = [e for e in world.delivered() if e.type is EventType.FINISHED]
    manifest = manifests.revision(world.deps, registration, None)
    assert manifest is not None
    assert finished.data["revision"] == manifest.revision == 1
    assert finished.data["manifest_digest"] == manifest.digest == manifests.digest_of(manifest)


def test_an_update_tells_what_changed_from_what_to_what_and_who_changed_it(world: World) -> None:
    world.register()
    world.update({"model_config": {"description": "Better", "private": False}})
    [updated] = [e for e in world.delivered() if e.type is EventType.UPDATED]
    assert updated.data["by"] == ALICE.id
    assert updated.data["changes"]["description"]["to"] == "Better"
    assert updated.data["changes"]["private"] == {"from": True, "to": False}


def test_a_cloud_event_has_the_registry_as_source_the_model_as_subject_and_no_secret(world: World) -> None:
    world.register()
    world.update({"model_files": {BIG: world.source(ALICE, "codegen", "v2.bin", payload(1000, 1))}})
    world.run_queue()
    source = world.deps.settings.base_url
    for event in world.delivered():
        document = event.cloud_event(source)
        assert document["specversion"] == "1.0"
        assert document["id"] == event.id
        assert document["source"] == source
        assert document["type"] == f"registry.model.{event.type.short}"
        assert document["subject"] == f"models/{ALICE.id}/codegen/1.0"
        assert document["data"]["state"] and "message" in document["data"]
        text = json.dumps(document)
        assert SAS not in text and "sig=" not in text and "blob.core.windows.net" not in text


def test_a_sink_that_is_down_gets_the_same_events_with_the_same_ids_once_it_is_back(world: World) -> None:
    world.register()
    world.sink.down = True
    with pytest.raises(Exception, match="down"):
        events.dispatch_pending(world.deps, ALICE.id)
    pending = world.store.pending_events(ALICE.id)
    assert kinds(pending) == ["registered", "finished"] or sorted(kinds(pending)) == [
        "finished",
        "registered",
    ]
    world.sink.down = False
    assert [e.id for e in world.delivered()] == [e.id for e in pending]


def test_a_dispatcher_killed_after_delivering_delivers_again_with_the_same_ids(world: World) -> None:
    """At least once: delivered, then the process dies before the outbox is emptied."""
    world.register()
    world.store.unavailable.add("delivered")  # the outbox cannot be emptied: as if killed here
    with pytest.raises(Exception, match="delivered"):
        events.dispatch_pending(world.deps, ALICE.id)
    first = [e.id for e in world.sink.received]
    world.store.unavailable.clear()
    world.delivered()
    assert [e.id for e in world.sink.received] == first + first  # duplicates carry the same id
    assert world.store.pending_events(ALICE.id) == []


def test_a_registration_undone_because_the_queue_failed_is_never_heard_of(world: World) -> None:
    world.queue.failing = True
    with pytest.raises(Unavailable):
        register(world.deps, ALICE, "codegen", "1.0", registration_body())
    assert world.store.pending_events(ALICE.id) == []
    assert world.delivered() == []


def test_the_worker_delivers_events_when_it_takes_a_job_and_after_it(world: World) -> None:
    world.register(finish=False)
    [job] = world.queue.take()
    handle_message(job.to_json(), world.deps, redelivered=False)
    assert sorted(kinds(world.sink.received)) == ["finished", "registered"]
    assert world.store.pending_events(ALICE.id) == []


def test_a_sink_that_is_down_does_not_fail_the_copy(world: World) -> None:
    world.sink.down = True
    world.register(finish=False)
    [job] = world.queue.take()
    assert handle_message(job.to_json(), world.deps, redelivered=False) == Outcome.FINISHED.value
    assert len(world.store.pending_events(ALICE.id)) == 2  # waiting for the sweep


def test_a_change_without_a_copy_asks_for_a_dispatch_and_the_sweep_is_the_backstop(world: World) -> None:
    world.register()
    world.delivered()
    world.update({"model_config": {"description": "Better"}})
    [dispatch] = [s.job for s in world.queue.sent if isinstance(s.job, DispatchJob)]
    handle_message(dispatch.to_json(), world.deps, redelivered=False)
    assert kinds(world.sink.received)[-1] == "updated"

    world.queue.failing = True  # the dispatch request is lost: the sweep delivers
    world.update({"model_config": {"description": "Best"}})
    world.queue.failing = False
    assert sweep(world.deps).dispatched == 1
    assert kinds(world.sink.received)[-1] == "updated"


def test_events_say_whether_others_could_see_the_model_when_they_happened(world: World) -> None:
    world.register(private=True)
    world.now.advance(1)
    world.update({"model_config": {"private": False}})
    world.now.advance(1)
    world.update({"model_config": {"description": "Public now"}})
    world.now.advance(1)
    world.update({"model_config": {"private": True}})
    world.now.advance(1)
    world.update({"model_config": {"private": False}})
    world.now.advance(1)
    world.delete()
    public = [(e.type.short, e.public) for e in sorted(world.delivered(), key=lambda e: e.time)]
    assert public[2:] == [
        ("updated", True),  # made public: others hear of it from this change on
        ("updated", True),
        ("updated", False),  # made private: from this change on, only its owner hears
        ("updated", True),
        ("deleted", True),  # those who could see it hear that it went
    ]
    assert all(not flag for _, flag in public[:2])  # registered and finished while private


# -- history ------------------------------------------------------------------------------------


def test_the_history_shows_a_change_before_it_is_dispatched(world: World) -> None:
    world.register()
    world.now.advance(1)
    world.update({"model_config": {"description": "Better"}})
    assert world.store.pending_events(ALICE.id)
    assert world.history()[0].type is EventType.UPDATED


def test_others_read_the_history_of_a_public_model_from_when_it_became_public(world: World) -> None:
    world.register(private=True)
    with pytest.raises(NotVisible):
        world.history(BOB)
    world.now.advance(1)
    world.update({"model_config": {"private": False}})
    world.now.advance(1)
    world.update({"model_config": {"description": "Better"}})
    assert kinds(world.history(BOB)) == ["updated", "updated"]
    assert sorted(kinds(world.history(ALICE))) == ["finished", "registered", "updated", "updated"]
    world.update({"model_config": {"private": True}})
    with pytest.raises(NotVisible):
        world.history(BOB)


def test_the_owner_reads_the_history_of_a_deleted_model_and_nobody_else_does(world: World) -> None:
    world.register(private=False)
    world.now.advance(1)
    world.delete()
    assert kinds(world.history(ALICE))[0] == "deleted"
    with pytest.raises(NotVisible):
        world.history(BOB)


def test_a_model_never_registered_has_no_history(world: World) -> None:
    with pytest.raises(NotVisible):
        world.history(ALICE, name="never")


def test_history_pages_cover_every_change_once(world: World) -> None:
    world.register()
    for n in range(7):
        world.now.advance(1)
        world.update({"model_config": {"description": f"Description {n}"}})
    world.delivered()
    key = ModelKey(ALICE.id, "codegen", "1.0")
    seen: list[str] = []
    token = None
    while True:
        page = history.model_history(world.deps, ALICE, key, 2, token)
        assert len(page.events) <= 2
        seen += [e.id for e in page.events]
        if page.continuation is None:
            break
        token = page.continuation
    assert seen == [e.id for e in world.history()]
    assert len(seen) == len(set(seen)) == 9


def test_a_history_token_works_only_for_its_model_and_its_caller(world: World) -> None:
    world.register(private=False)
    world.register("other", private=False)
    for n in range(3):
        world.update({"model_config": {"description": f"D{n}"}})
    world.delivered()
    page = history.model_history(world.deps, ALICE, ModelKey(ALICE.id, "codegen", "1.0"), 1)
    assert page.continuation
    with pytest.raises(InvalidRequest, match="continuation"):
        history.model_history(world.deps, ALICE, ModelKey(ALICE.id, "other", "1.0"), 1, page.continuation)
    with pytest.raises(InvalidRequest, match="continuation"):
        history.model_history(world.deps, BOB, ModelKey(ALICE.id, "codegen", "1.0"), 1, page.continuation)
