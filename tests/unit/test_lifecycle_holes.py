"""The holes of issues 8 and 13, each reproduced on the fakes: stale bytes after a delete, clone
leaks, listings left behind by failures and races, the takeover limit, quotas, key rotation.

Each test drives the registry the way the bug report did, with deterministic interleavings
(FakeRegistrationStore.before runs another actor right before a store call)."""

from __future__ import annotations

import base64
import dataclasses
import json
from typing import Any

import pytest

from registry.domain.jobs import CopyJob
from registry.domain.model import MAX_TAKEOVERS, Registration
from registry.domain.vocabulary import FileState, State
from registry.sealing import Sealer
from registry.services import copying, lifecycle
from registry.services import models as service
from registry.services.catalog import refresh_listing
from registry.services.copying import Outcome, fail_poisoned
from registry.services.jobs import fail_after_last_delivery
from registry.services.maintenance import reseal_all
from registry.services.registration import TooMany, Unavailable, job_for, register, request_context
from registry.services.sweep import sweep
from registry.validation import MAX_BLOB_NAME, InvalidRequest
from tests.builders import make_settings
from tests.fakes import REGISTRY_CONTAINER_URL, SimulatedCrash, StageCall
from tests.world import ALICE, BIG, BOB, World, default_files, payload

# -- issue 8.1: rows and blobs belong to one registration ----------------------------------------


def test_a_delete_between_the_workers_lease_and_its_file_rows_leaves_nothing_a_new_registration_trusts(
    world: World,
) -> None:
    world.register(finish=False)
    [job] = world.queue.take()
    # The worker takes its lease, then, before it reads its file rows, the owner deletes the model.
    world.store.before["files"] = lambda: world.delete()
    assert world.process(job) in (Outcome.LOST, Outcome.IGNORED)
    assert world.store.all() == []
    assert world.store.file_partitions() == []
    assert world.copier.blobs_under(f"{ALICE.id}/codegen/1.0/") == []

    # The same name and version registered again, with other bytes: copied in full, never
    # "Finished" on the strength of rows or blobs of the deleted registration.
    stages = world.copier.staged_count()
    again = world.register(files=default_files(seed=7))
    assert again.state is State.FINISHED
    assert world.copier.staged_count() > stages
    assert world.copier.blob(again.blob_path(BIG)) == default_files(seed=7)[BIG]


def test_rows_of_an_earlier_registration_of_the_same_name_are_never_read(world: World) -> None:
    first = world.register()
    world.delete()
    # A worker of the deleted registration that comes back late writes its rows under its own id.
    world.store.insert_files(
        first, [dataclasses.replace(p, etag=None) for p in world.store.peek_files(first)]
    )
    again = world.register(files=default_files(seed=8))
    assert world.store.peek_files(again) != world.store.peek_files(first)
    assert world.copier.blob(again.blob_path(BIG)) == default_files(seed=8)[BIG]
    assert again.blob_prefix != first.blob_prefix


def test_a_delete_that_fails_half_way_is_gone_for_the_api_and_a_retried_delete_finishes_it(
    world: World,
) -> None:
    registration = world.register(private=False)
    world.copier.fail_deletes = True  # the blobs cannot be removed right now
    with pytest.raises(Unavailable):
        world.delete()
    # A tombstone: gone for everyone, the owner included, listed nowhere.
    tombstone = world.store.peek(ALICE.id, "codegen", "1.0")
    assert tombstone is not None and tombstone.state is State.DELETING
    for caller in (ALICE, BOB):
        with pytest.raises(service.NotVisible):
            world.find(caller)
    assert world.listing(ALICE) == world.listing(BOB) == []
    assert world.store.catalog() == []

    world.copier.fail_deletes = False
    world.delete()  # the retry finishes what the first one started
    assert world.store.peek(ALICE.id, "codegen", "1.0") is None
    assert world.copier.blobs_under(registration.blob_prefix) == []
    with pytest.raises(service.NotVisible):
        world.delete()


def test_the_sweep_finishes_a_delete_that_stopped_half_way(world: World) -> None:
    registration = world.register()
    world.copier.fail_deletes = True
    with pytest.raises(Unavailable):
        world.delete()
    world.copier.fail_deletes = False
    swept = sweep(world.deps)
    assert (swept.requeued, swept.deleted) == (0, 1)
    assert world.store.all() == []
    assert world.copier.blobs_under(registration.blob_prefix) == []
    assert world.store.file_partitions() == []


def test_registering_over_a_half_finished_delete_finishes_it_first(world: World) -> None:
    old = world.register(files={**default_files(), "old-only.bin": b"stale"})
    world.copier.fail_deletes = True
    with pytest.raises(Unavailable):
        world.delete()
    world.copier.fail_deletes = False
    new = world.register(files=default_files(seed=9))
    assert new.registration_id != old.registration_id
    assert world.copier.blobs_under(old.blob_prefix) == []
    assert world.copier.blob(new.blob_path(BIG)) == default_files(seed=9)[BIG]
    assert "old-only.bin" not in new.file_names


# -- issue 8.2: a clone copies the pinned blob, only while its parent is visible -----------------


def test_a_clone_of_a_model_deleted_and_registered_again_private_fails_without_a_byte_of_it(
    world: World,
) -> None:
    world.register(private=False)
    world.clone({"parent_version": "1.0", "parent_owner": ALICE.id})  # accepted, not yet copied
    world.delete()
    secret = default_files(seed=99)
    world.register(private=True, files=secret, finish=False)  # Alice's new, private bytes, same name

    assert sorted(world.run_queue()) == sorted([Outcome.FAILED, Outcome.FINISHED])
    clone = world.record(BOB, version="2.0")
    assert clone.state is State.FAILED
    assert any(f"'{target}'" in clone.message for target in secret)
    assert "no longer visible" in clone.message
    bobs = [p for p in world.copier.committed if p.startswith(f"{BOB.id}/")]
    assert all(world.copier.blob(p) not in secret.values() for p in bobs)


def test_a_clone_whose_longer_prefix_would_not_hold_an_inherited_file_name_is_refused_naming_it(
    world: World,
) -> None:
    parent_room = (
        MAX_BLOB_NAME - request_context("codegen", "1.0", ALICE, world.deps.settings).blob_prefix_length
    )
    long_name = "d/" + "w" * (parent_room - 2)
    world.register(private=False, files={**default_files(), long_name: b"weights"})
    version = "v" * 100  # the clone's prefix is longer than the parent's by the version and owner

    with pytest.raises(InvalidRequest) as refused:
        world.clone({"parent_owner": ALICE.id, "parent_version": "1.0"}, version=version)

    [error] = refused.value.errors
    assert error.field == "ignore_files"
    assert "d/www" in error.rule and "ignore it" in error.rule
    assert world.store.peek(BOB.id, "codegen", version) is None  # nothing half-written
    # Ignoring that file, the clone is accepted and copies the rest.
    world.clone(
        {"parent_owner": ALICE.id, "parent_version": "1.0", "ignore_files": [long_name]}, version=version
    )
    world.run_queue()
    clone = world.record(BOB, version=version)
    assert clone.state is State.FINISHED
    assert long_name not in clone.file_names


def test_a_clone_fails_if_the_parent_turns_private_before_its_copy(world: World) -> None:
    world.register(private=False)
    world.clone({"parent_version": "1.0", "parent_owner": ALICE.id})
    world.update({"model_config": {"private": True}})
    world.run_queue()
    assert world.record(BOB, version="2.0").state is State.FAILED


@pytest.mark.parametrize("old_bytes_retired", [False, True])
def test_a_clone_copies_the_blob_version_seen_when_it_was_accepted_or_fails(
    world: World, old_bytes_retired: bool
) -> None:
    world.register(private=False)
    world.clone({"parent_version": "1.0", "parent_owner": ALICE.id})
    # Alice replaces a file after Bob's clone was accepted: the new bytes are not what Bob cloned.
    [clone_job] = world.queue.take()
    url = world.source(ALICE, "codegen", "v2/model.bin", payload(len(default_files()[BIG]), seed=5))
    world.update({"model_files": {BIG: url}})
    assert world.run_queue() == [Outcome.FINISHED]  # Alice's new bytes are in before Bob's copy runs
    if old_bytes_retired:  # the replaced blob's read links expired and it was removed
        world.now.advance(copying.RETIRE_AFTER.total_seconds())
        assert [world.process(job) for job in world.queue.take()] == [Outcome.RETIRED]
    outcome = world.process(clone_job)
    clone = world.record(BOB, version="2.0")
    if old_bytes_retired:
        assert outcome is Outcome.FAILED and clone.state is State.FAILED
        assert f"'{BIG}'" in clone.message and "changed or was removed" in clone.message
    else:  # the very version Bob cloned, byte for byte, not Alice's new one
        assert outcome is Outcome.FINISHED
        assert world.served(clone, BIG) == default_files()[BIG]


def test_a_clone_mints_its_read_urls_when_it_copies_short_lived_and_stores_none(world: World) -> None:
    world.register(private=False)
    world.clone({"parent_version": "1.0", "parent_owner": ALICE.id})
    assert world.copier.read_url_calls == []  # nothing minted, nothing stored at acceptance
    record = world.record(BOB, version="2.0")
    assert b"sig=" not in record.sealed and "sig=" not in json.dumps(record.document)
    world.run_queue()
    assert world.record(BOB, version="2.0").state is State.FINISHED
    assert world.copier.read_url_calls  # minted by the worker
    minted = [c.url for c in world.copier.stage_calls if c.url.startswith(REGISTRY_CONTAINER_URL)]
    expiries = {url.split("se=")[1].split("&")[0] for url in minted}
    assert expiries  # each well short of days: a slice and a margin
    assert all(_seconds_from_now(e) <= world.policy.time_budget_seconds + 301 for e in expiries)


def _seconds_from_now(encoded: str) -> float:
    from datetime import UTC, datetime
    from urllib.parse import unquote

    return (datetime.fromisoformat(unquote(encoded)) - datetime.now(UTC)).total_seconds()


# -- issue 13: one way to end, the takeover limit, the listing race -------------------------------


def _public_model_whose_file_update_keeps_failing(world: World) -> CopyJob:
    world.register(private=False)
    url = world.source(ALICE, "codegen", "v2/weights.bin", payload(1000, seed=3))
    world.copier.fail(url, permanent=False)
    world.update({"model_files": {BIG: url}})
    [job] = world.queue.take()
    for _ in range(3):
        with pytest.raises(Exception, match="503"):
            world.process(job)
    return job


def test_a_failure_through_the_poison_queue_refreshes_the_public_listing(world: World) -> None:
    job = _public_model_whose_file_update_keeps_failing(world)
    assert [m.state for m in world.store.catalog()] == ["InProgress"]
    assert fail_poisoned(job.to_json(), world.deps) is True
    assert world.record(ALICE).state is State.FAILED
    assert [m.state for m in world.store.catalog()] == ["Failed"]  # for everyone, not just the owner


def test_a_failure_on_the_last_service_bus_delivery_refreshes_the_public_listing(world: World) -> None:
    job = _public_model_whose_file_update_keeps_failing(world)
    fail_after_last_delivery(job.to_json(), "StorageUnavailable: 503", world.deps)
    assert world.record(ALICE).state is State.FAILED
    assert [m.state for m in world.store.catalog()] == ["Failed"]


def test_a_restart_that_cannot_enqueue_fails_through_the_same_ending(world: World) -> None:
    registration = world.register(private=False, finish=False)
    world.queue.take()
    stored = world.record(ALICE)
    stored.fail(world.now(), "Copying 'x' failed")
    world.store.replace(stored)
    world.queue.failing = True
    with pytest.raises(Unavailable):
        register(world.deps, ALICE, "codegen", "1.0", world.last_body)
    assert world.record(ALICE).state is State.FAILED
    assert registration.registration_id == world.record(ALICE).registration_id


@pytest.mark.parametrize("deaths", [MAX_TAKEOVERS - 1, MAX_TAKEOVERS])
def test_the_copy_is_given_up_after_exactly_five_worker_deaths(world: World, deaths: int) -> None:
    world.register(finish=False)
    [job] = world.queue.take()
    world.copier.crash_on_stage_call = 1
    for _ in range(deaths):
        with pytest.raises(SimulatedCrash):
            world.process(job)
        world.now.advance(world.policy.lease_seconds + 1)  # the dead holder's lease lapses
        world.copier.stage_calls.clear()
    world.copier.crash_on_stage_call = None
    outcome = world.process(job)
    if deaths == MAX_TAKEOVERS:
        assert outcome is Outcome.FAILED
        assert "died repeatedly" in world.record(ALICE).message
    else:
        assert outcome is Outcome.FINISHED


def test_a_model_made_private_while_its_listing_is_refreshed_never_stays_listed(world: World) -> None:
    """Two PATCHes interleave with the worker's publish: the first changes the description (the
    model stays public), the second makes it private, right before the worker publishes again."""
    world.register(private=False)
    finishing = world.record(ALICE)  # what the worker read before it finished

    def second_patch() -> None:
        world.update({"model_config": {"private": True}})

    def first_patch() -> None:
        world.update({"model_config": {"description": "a newer description"}})
        world.store.before["publish"] = second_patch  # right before the worker's next publish

    world.store.before["get"] = first_patch  # right before the worker re-reads the record
    refresh_listing(world.store, finishing)

    assert world.record(ALICE).private is True
    assert world.store.catalog() == []
    assert world.listing(BOB) == []


def test_a_listing_refresh_lists_what_the_record_says_once_it_holds_still(world: World) -> None:
    world.register(private=False)
    finishing = world.record(ALICE)
    world.store.before["get"] = lambda: world.update({"model_config": {"description": "newer"}})
    refresh_listing(world.store, finishing)
    assert [m.description for m in world.store.catalog()] == ["newer"]


def test_every_ending_goes_through_conclude(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """Finish, fail by the worker, the poison queue and the last delivery all end in one place."""
    ended: list[State] = []
    real = lifecycle.conclude

    def spy(*args: Any, **kwargs: Any) -> Registration | None:
        result = real(*args, **kwargs)
        if result is not None:
            ended.append(result.state)
        return result

    monkeypatch.setattr(lifecycle, "conclude", spy)
    job = _public_model_whose_file_update_keeps_failing(world)  # registered: one Finished
    fail_poisoned(job.to_json(), world.deps)
    assert ended == [State.FINISHED, State.FAILED]


# -- issue 8.4: quotas ------------------------------------------------------------------------------


def test_a_model_over_the_per_file_byte_quota_fails_before_a_byte_is_copied(world: World) -> None:
    world.settings = make_settings(REGISTRY_MAX_FILE_GIB=str(1 / 1024))  # 1 MiB a file
    world.register(finish=False)
    world.run_queue()
    record = world.record(ALICE)
    assert record.state is State.FAILED
    assert (
        f"'{BIG}'" in record.message and "a file" in record.message and f"{1024 * 1024:,}" in record.message
    )
    assert world.copier.stage_calls == []


def test_a_model_over_the_per_model_byte_quota_fails_naming_the_file_that_crosses_it(world: World) -> None:
    world.settings = make_settings(REGISTRY_MAX_MODEL_GIB=str(2 / 1024))  # 2 MiB a model
    world.register(finish=False)
    world.run_queue()
    record = world.record(ALICE)
    assert record.state is State.FAILED
    assert "a model" in record.message and f"{2 * 1024 * 1024:,}" in record.message
    assert world.copier.stage_calls == []
    assert any(p.state is FileState.FAILED for p in world.store.peek_files(record))


def test_registrations_in_progress_per_owner_are_limited_and_a_replay_still_answers(world: World) -> None:
    world.settings = make_settings(REGISTRY_MAX_IN_PROGRESS="2")
    world.register("a", finish=False)
    world.register("b", finish=False)
    with pytest.raises(TooMany) as refused:
        world.register("c", finish=False)
    assert "REGISTRY_MAX_IN_PROGRESS" in str(refused.value) and refused.value.retry_after > 0
    assert world.store.peek(ALICE.id, "c", "1.0") is None
    again = world.register("a", finish=False, files=world.files_of["a"])  # the same request: a replay
    assert again.name == "a"
    world.register("d", caller=BOB, finish=False)  # another owner is not held back


def test_files_per_model_are_limited_at_registration(world: World) -> None:
    world.settings = make_settings(REGISTRY_MAX_FILES="5")
    files = {**default_files(), "a.bin": b"a"}
    world.register("ok", files=files, finish=False)
    with pytest.raises(InvalidRequest) as refused:
        world.register("too-many", files={**files, "b.bin": b"b"}, finish=False)
    assert [(e.field, e.rule) for e in refused.value.errors] == [
        ("model_files", "a model has at most 5 files")
    ]


# -- issue 8.7: the sealing key rotates --------------------------------------------------------------


def test_a_rotated_key_opens_old_seals_replays_patches_and_finishes_then_reseal_retires_the_old_key(
    world: World,
) -> None:
    world.register(finish=False)
    body = world.last_body
    old_key, new_key = bytes(range(32)), bytes(range(100, 132))
    rotated = make_settings(
        REGISTRY_SEALING_KEY=base64.b64encode(new_key).decode(),
        REGISTRY_SEALING_PREVIOUS_KEYS=base64.b64encode(old_key).decode(),
    )
    world.settings, world.sealer = rotated, Sealer(new_key, [old_key])

    replay = register(world.deps, ALICE, "codegen", "1.0", body)  # identical: not a conflict
    assert replay.registration_id == world.record(ALICE).registration_id
    assert Outcome.FINISHED in world.run_queue()
    url = world.source(ALICE, "codegen", "v2/model.bin", payload(1000, seed=4))
    world.update({"model_files": {BIG: url}})  # opens the old seal, seals with the new key
    assert world.run_queue() == [Outcome.FINISHED]
    assert world.sealer.is_current(world.record(ALICE).sealed)

    report = reseal_all(world.deps)
    assert report.ok
    record = world.record(ALICE)
    assert world.sealer.is_current(record.sealed) and world.sealer.digest_is_current(record.body_digest)

    world.sealer = Sealer(new_key)  # the old key retired
    world.settings = make_settings(REGISTRY_SEALING_KEY=base64.b64encode(new_key).decode())
    again = register(world.deps, ALICE, "codegen", "1.0", body)
    assert again.state is State.FINISHED  # still recognised as the same request


def test_records_no_configured_key_opens_are_reported_by_reseal_and_never_changed(world: World) -> None:
    world.register(finish=False)
    before = world.record(ALICE)
    world.sealer = Sealer(bytes(range(50, 82)))  # a key that never sealed anything here
    report = reseal_all(world.deps)
    assert not report.ok and report.unreadable == [before.key]
    assert world.record(ALICE) == before


def test_a_copy_whose_sources_no_key_opens_fails_saying_why(world: World) -> None:
    world.register(finish=False)
    world.sealer = Sealer(bytes(range(50, 82)))
    assert world.run_queue() == [Outcome.FAILED]
    assert "REGISTRY_SEALING_PREVIOUS_KEYS" in world.record(ALICE).message


# -- stage calls through a deleted registration's path never reach a new one ----------------------


def test_a_worker_of_a_deleted_registration_cleans_only_its_own_blobs(world: World) -> None:
    world.policy = dataclasses.replace(world.policy, concurrency=1)
    world.register(finish=False)
    [old_job] = world.queue.take()
    old = world.record(ALICE)

    def replace_the_model(number: int, call: StageCall) -> None:
        if number == 2:
            world.copier.before_stage = None
            world.delete()
            world.register(files=default_files(seed=11))  # a new registration, finished

    world.copier.before_stage = replace_the_model
    assert world.process(old_job) in (Outcome.LOST, Outcome.IGNORED)
    new = world.record(ALICE)
    assert new.registration_id != old.registration_id
    assert world.copier.blobs_under(old.blob_prefix) == []
    assert world.copier.blob(new.blob_path(BIG)) == default_files(seed=11)[BIG]
    assert job_for(new).registration_id == new.registration_id


@pytest.fixture
def world() -> World:
    return World()
