"""Issue 10 on the fakes: the registry hashes its own copy of every file, resumably, checks the
digest its owner expected, and serves a file only once it is verified."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import os

import pytest

from registry import digests
from registry.blueprints.http import serve
from registry.digests import Sha256, resumable_available
from registry.domain.jobs import RegisterJob
from registry.domain.vocabulary import FileState, State
from registry.services import copying, manifests
from registry.services.copying import MIB, Outcome
from registry.services.jobs import register_from_queue
from registry.services.registration import register
from tests.builders import make_settings, registration_body
from tests.fakes import SimulatedCrash
from tests.unit.test_http_handlers import request
from tests.world import ALICE, BIG, BOB, Ticking, World, default_files, payload


@pytest.fixture
def world() -> World:
    return World()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- the resumable SHA-256 ----------------------------------------------------------------------


@pytest.mark.parametrize("split", [0, 1, 63, 64, 65, 4096, 99_999])
def test_a_hash_saved_anywhere_and_resumed_equals_hashlib(split: int) -> None:
    data = os.urandom(100_000)
    first = Sha256()
    first.update(data[:split])
    resumed = Sha256.resume(first.state(), first.length)
    resumed.update(data[split:])
    assert resumed.hexdigest() == sha(data)
    assert first.hexdigest() == sha(data[:split])  # reading the digest does not end the hash


def test_libcrypto_keeps_the_state_on_this_machine() -> None:
    assert resumable_available(), "the resumable SHA-256 fell back to hashlib: re-hashing is not bounded here"


def test_a_state_that_does_not_match_its_length_starts_afresh() -> None:
    hasher = Sha256()
    hasher.update(b"x" * 100)
    assert Sha256.resume(hasher.state(), 99).length == 0
    assert Sha256.resume("", 100).length == 0
    assert Sha256.resume("bm90IGEgc3RhdGU=", 100).length == 0


# -- digests computed by the registry ------------------------------------------------------------


def test_every_file_gets_the_sha256_of_the_registrys_own_copy_in_its_row_and_on_the_blob(
    world: World,
) -> None:
    files = default_files() | {"second/big.bin": payload(3 * MIB + 11, seed=5)}
    record = world.register(files=files)
    assert record.state is State.FINISHED
    for row in world.store.peek_files(record):
        assert row.state is FileState.FINISHED
        assert row.served_sha256 == sha(files[row.target])
        blob = world.copier.committed[record.blob_path(row.target, row.served_generation)]
        assert blob.metadata == {"sha256": sha(files[row.target])}
        assert blob.etag == row.blob_etag
    # Read back from the registry's copy, in bounded chunks: never more than one chunk at a time.
    assert world.copier.read_range_calls
    assert max(length for _, _, length in world.copier.read_range_calls) <= copying.HASH_CHUNK_BYTES


def test_the_registration_is_finished_only_once_every_file_is_hashed(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(copying, "HASH_CHUNK_BYTES", MIB // 4)
    world.register(finish=False)
    [job] = world.queue.take()
    phases: list[tuple[State, set[FileState]]] = []

    real = world.copier.read_range

    def watch(path: str, offset: int, length: int, etag: str) -> bytes:
        record = world.store.peek(ALICE.id, "codegen", "1.0")
        assert record is not None
        phases.append((record.state, {p.state for p in world.store.peek_files(record)}))
        return real(path, offset, length, etag)

    monkeypatch.setattr(world.copier, "read_range", watch)
    assert world.process(job) is Outcome.FINISHED
    assert phases and all(state is State.IN_PROGRESS for state, _ in phases)
    assert any(FileState.HASHING in files for _, files in phases)


def test_an_expected_digest_that_does_not_match_fails_naming_both_and_removes_the_copy(world: World) -> None:
    files = default_files()
    body = registration_body()
    body["model_files"] = {t: world.source(ALICE, "codegen", t, d) for t, d in files.items()}
    wrong = sha(b"something else")
    body["model_files"][BIG] = {"url": body["model_files"][BIG], "sha256": wrong.upper()}
    register(world.deps, ALICE, "codegen", "1.0", body)
    assert world.run_queue() == [Outcome.FAILED]
    record = world.record(ALICE)
    assert record.state is State.FAILED
    assert BIG in record.message and wrong in record.message and sha(files[BIG]) in record.message
    big = next(p for p in world.store.peek_files(record) if p.target == BIG)
    assert world.copier.blob(record.blob_path(BIG, big.generation)) is None
    assert world.served(record, BIG) is None


def test_a_matching_expected_digest_finishes(world: World) -> None:
    files = default_files()
    body = registration_body()
    body["model_files"] = {
        t: {"url": world.source(ALICE, "codegen", t, d), "sha256": sha(d)} for t, d in files.items()
    }
    register(world.deps, ALICE, "codegen", "1.0", body)
    assert world.run_queue() == [Outcome.FINISHED]
    assert "sig=" not in str(world.record(ALICE).document)


def test_a_budget_that_ends_mid_hash_continues_from_the_saved_state(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(copying, "HASH_CHUNK_BYTES", MIB // 2)
    world.monotonic = Ticking(1.0)  # every read of the clock is a second later
    world.policy = dataclasses.replace(world.policy, time_budget_seconds=20)
    files = {**default_files(), BIG: payload(6 * MIB, seed=2)}
    record = world.register(files=files, finish=False)
    outcomes = world.run_queue()
    assert outcomes[-1] is Outcome.FINISHED and Outcome.CONTINUED in outcomes
    offsets = [offset for path, offset, _ in world.copier.read_range_calls if path.endswith(BIG)]
    assert sorted(set(offsets)) == list(range(0, 6 * MIB, MIB // 2))
    # Resumed where each slice stopped: a chunk is read again only if it was read ahead, unused.
    assert len(offsets) - len(set(offsets)) <= outcomes.count(Outcome.CONTINUED)
    assert world.served(record, BIG) == files[BIG]


def test_a_worker_killed_mid_hash_resumes_re_hashing_at_most_one_checkpoint(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(copying, "HASH_CHUNK_BYTES", MIB // 4)
    monkeypatch.setattr(copying, "HASH_CHECKPOINT_BYTES", MIB)
    files = {**default_files(), BIG: payload(8 * MIB, seed=3)}
    world.register(files=files, finish=False)
    [job] = world.queue.take()
    real = world.copier.read_range
    calls = {"n": 0}

    def dying(path: str, offset: int, length: int, etag: str) -> bytes:
        calls["n"] += 1
        if path.endswith(BIG) and offset >= 5 * MIB + MIB // 2:
            raise SimulatedCrash("the worker dies mid-hash")
        return real(path, offset, length, etag)

    monkeypatch.setattr(world.copier, "read_range", dying)
    with pytest.raises(SimulatedCrash):
        world.process(job)
    monkeypatch.setattr(world.copier, "read_range", real)
    world.copier.read_range_calls.clear()
    world.now.advance(world.policy.lease_seconds + 1)
    assert world.process(job) is Outcome.FINISHED
    rehashed = sum(length for path, offset, length in world.copier.read_range_calls if path.endswith(BIG))
    hashed_before_the_crash = 5 * MIB + MIB // 2
    assert rehashed == 8 * MIB - 5 * MIB  # resumed from the last checkpoint, at 5 MiB
    assert 8 * MIB - rehashed <= hashed_before_the_crash
    assert rehashed - (8 * MIB - hashed_before_the_crash) <= copying.HASH_CHECKPOINT_BYTES
    record = world.record(ALICE)
    assert world.served(record, BIG) == files[BIG]
    big = next(p for p in world.store.peek_files(record) if p.target == BIG)
    assert big.served_sha256 == sha(files[BIG])


# -- replacing files: the previous one is served until the new one is verified ---------------------


def test_a_replacement_with_a_wrong_digest_keeps_serving_the_previous_file(world: World) -> None:
    record = world.register()
    new = payload(MIB + 3, seed=8)
    url = world.source(ALICE, "codegen", "v2/model.bin", new)
    world.update({"model_files": {BIG: {"url": url, "sha256": sha(b"not these bytes")}}})
    assert world.run_queue() == [Outcome.FAILED]
    assert world.served(world.record(ALICE), BIG) == default_files()[BIG]
    link = world.file_url(ALICE, BIG)
    assert world.read_url_data(link) == default_files()[BIG]
    assert record.registration_id == world.record(ALICE).registration_id


def test_a_replacement_is_served_once_verified_and_the_replaced_blob_is_removed(world: World) -> None:
    record = world.register()
    old_path = record.blob_path(BIG, 0)
    new = payload(MIB + 3, seed=8)
    world.update(
        {"model_files": {BIG: {"url": world.source(ALICE, "codegen", "v2.bin", new), "sha256": sha(new)}}}
    )
    link = world.file_url(ALICE, BIG)  # handed out just before the new bytes are in
    [update] = world.queue.take()
    assert world.process(update) is Outcome.FINISHED
    record = world.record(ALICE)
    assert world.served(record, BIG) == new
    big = next(p for p in world.store.peek_files(record) if p.target == BIG)
    assert (big.served_generation, big.served_sha256) == (1, sha(new))
    # The link handed out before keeps working until it expires; then the old blob goes.
    assert world.read_url_data(link) == default_files()[BIG]
    [retire] = world.queue.sent
    assert retire.delay_seconds >= copying.RETIRE_AFTER.total_seconds()
    [job] = world.queue.take()
    assert job.purpose == "retire"
    world.now.advance(copying.RETIRE_AFTER.total_seconds())
    assert world.process(job) is Outcome.RETIRED
    assert world.copier.blob(old_path) is None
    assert world.served(world.record(ALICE), BIG) == new


# -- clones inherit what their parent verified ----------------------------------------------------


def test_a_clone_inherits_its_parents_digests_without_hashing_the_inherited_files_again(world: World) -> None:
    parent = world.register(private=False)
    world.copier.read_range_calls.clear()
    world.clone({"parent_version": "1.0", "parent_owner": ALICE.id})
    assert world.run_queue() == [Outcome.FINISHED]
    clone = world.record(BOB, version="2.0")
    assert world.copier.read_range_calls == []  # every file inherited: nothing read back
    parent_rows = {p.target: p.served_sha256 for p in world.store.peek_files(parent)}
    assert {p.target: p.served_sha256 for p in world.store.peek_files(clone)} == parent_rows


def test_the_status_route_tells_each_files_phase_pending_copying_hashing_done(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    def phases() -> dict[str, str]:
        req, route = request(
            "registration_status",
            name="codegen",
            version="1.0",
            headers={"X-MS-CLIENT-PRINCIPAL-ID": ALICE.id, "X-MS-CLIENT-PRINCIPAL-NAME": ALICE.name},
        )
        response = serve(req, route, world.deps)
        assert response.status_code == 200
        return {f["name"]: f["phase"] for f in json.loads(response.get_body())["files"]}

    world.settings = make_settings(REGISTRY_DEV_MODE="true")  # the caller's identity from its headers
    world.register(finish=False)
    assert set(phases().values()) == {"pending"}
    seen: list[dict[str, str]] = []
    real_read, real_stage = world.copier.read_range, world.copier.stage_block

    def reading(path: str, offset: int, length: int, etag: str) -> bytes:
        seen.append(phases())
        return real_read(path, offset, length, etag)

    def staging(path: str, block_id: str, url: str, offset: int, length: int) -> None:
        seen.append(phases())
        real_stage(path, block_id, url, offset, length)

    monkeypatch.setattr(world.copier, "read_range", reading)
    monkeypatch.setattr(world.copier, "stage_block", staging)
    [job] = world.queue.take()
    assert world.process(job) is Outcome.FINISHED
    assert any("copying" in p.values() for p in seen) and any("hashing" in p.values() for p in seen)
    assert set(phases().values()) == {"done"}


def test_the_file_route_carries_the_files_digest(world: World) -> None:
    world.settings = make_settings(REGISTRY_DEV_MODE="true")
    world.register(private=False)
    req, route = request(
        "get_model_file",
        name="codegen",
        version="1.0",
        owner=ALICE.id,
        path=BIG,
        headers={"X-MS-CLIENT-PRINCIPAL-ID": BOB.id},
    )
    response = serve(req, route, world.deps)
    assert response.status_code == 302
    digest = base64.b64decode(response.headers["Repr-Digest"].removeprefix("sha-256=:").removesuffix(":"))
    assert digest == hashlib.sha256(default_files()[BIG]).digest()


# -- manifests and revisions ----------------------------------------------------------------------


def test_a_finished_registration_has_revision_1_listing_each_file_with_its_size_and_digest(
    world: World,
) -> None:
    files = default_files()
    record = world.register(files=files)
    [manifest] = world.store.manifests(record)
    assert manifest.revision == record.revision == 1
    listed = {(f.path, f.size, f.sha256) for f in manifest.files}
    assert listed == {(t, len(d), sha(d)) for t, d in files.items()}
    assert [f.path for f in manifest.files] == sorted(files)
    assert manifest.digest == manifests.digest_of(manifest)
    assert manifest.digest.startswith("sha256:") and manifest.by == ALICE.id
    assert "(revision 1)" in record.message


def test_replacing_files_makes_a_new_revision_and_the_earlier_one_stays(world: World) -> None:
    record = world.register()
    world.update({"model_config": {"description": "words only"}})  # no files changed: no revision
    assert world.run_queue() == []
    new = payload(MIB + 1, seed=12)
    world.update({"model_files": {BIG: world.source(ALICE, "codegen", "v2.bin", new)}})
    assert world.run_queue() == [Outcome.FINISHED]
    record = world.record(ALICE)
    second, first = world.store.manifests(record)
    assert (second.revision, first.revision, record.revision) == (2, 1, 2)
    assert second.digest != first.digest
    assert {f.path: f.sha256 for f in second.files}[BIG] == sha(new)
    assert {f.path: f.sha256 for f in first.files}[BIG] == sha(default_files()[BIG])
    assert manifests.revision(world.deps, record, 1) == first
    assert manifests.revision(world.deps, record, None) == second
    assert manifests.revision(world.deps, record, 3) is None


def test_a_deleted_model_takes_its_manifests_with_it(world: World) -> None:
    record = world.register()
    world.delete()
    assert world.store.manifests(record) == []


def test_without_a_resumable_sha256_a_file_is_hashed_to_its_end_in_one_pass_not_restarted_forever(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(digests, "resumable_available", lambda: False)  # libcrypto without SHA256_*
    monkeypatch.setattr(copying, "HASH_CHUNK_BYTES", MIB // 2)
    world.monotonic = Ticking(1.0)
    world.policy = dataclasses.replace(world.policy, time_budget_seconds=20)
    files = {**default_files(), BIG: payload(6 * MIB, seed=2)}
    record = world.register(files=files, finish=False)
    assert world.run_queue()[-1] is Outcome.FINISHED
    offsets = [offset for path, offset, _ in world.copier.read_range_calls if path.endswith(BIG)]
    assert offsets == list(range(0, 6 * MIB, MIB // 2))  # each chunk read once, in order
    big = next(p for p in world.store.peek_files(world.record(ALICE)) if p.target == BIG)
    assert (
        big.served_sha256 == sha(files[BIG]) and record.registration_id == world.record(ALICE).registration_id
    )


def test_a_clones_added_file_with_a_wrong_expected_digest_fails_the_clone_naming_it(world: World) -> None:
    world.register(private=False)
    added = payload(1000, seed=9)
    url = world.source(BOB, "codegen", "extra.bin", added)
    wrong = sha(b"not the file")
    clone = {
        "parent_owner": ALICE.id,
        "parent_version": "1.0",
        "model_files": {"extra.bin": {"url": url, "sha256": wrong}},
    }
    world.clone(clone)
    world.run_queue()
    record = world.record(BOB, version="2.0")
    assert record.state is State.FAILED
    assert "extra.bin" in record.message and wrong in record.message and sha(added) in record.message
    assert world.served(record, "extra.bin") is None


def test_a_clones_added_file_with_the_right_expected_digest_is_verified_with_the_inherited_ones(
    world: World,
) -> None:
    world.register(private=False)
    added = payload(1000, seed=9)
    url = world.source(BOB, "codegen", "extra.bin", added)
    clone = {
        "parent_owner": ALICE.id,
        "parent_version": "1.0",
        "model_files": {"extra.bin": {"url": url, "sha256": sha(added)}},
    }
    world.clone(clone)
    world.run_queue()
    record = world.record(BOB, version="2.0")
    assert record.state is State.FINISHED
    digests = {p.target: p.served_sha256 for p in world.store.peek_files(record)}
    assert digests["extra.bin"] == sha(added) and digests[BIG] == sha(default_files()[BIG])


@pytest.mark.parametrize("right", [True, False], ids=["matching", "mismatching"])
def test_a_bulk_lines_expected_digest_is_checked_like_the_apis(world: World, right: bool) -> None:
    world.settings = make_settings(REGISTRY_BULK_OWNERS=ALICE.id)
    files = default_files()
    body = registration_body()
    body["model_files"] = {t: world.source(ALICE, "codegen", t, d) for t, d in files.items()}
    expected = sha(files[BIG]) if right else sha(b"other bytes")
    body["model_files"][BIG] = {"url": body["model_files"][BIG], "sha256": expected}
    assert register_from_queue(RegisterJob(ALICE.id, "codegen", "1.0", body), world.deps) == "InProgress"
    world.run_queue()
    record = world.record(ALICE)
    if right:
        assert record.state is State.FINISHED
        assert world.served(record, BIG) == files[BIG]
    else:
        assert record.state is State.FAILED and expected in record.message
        assert world.served(record, BIG) is None
