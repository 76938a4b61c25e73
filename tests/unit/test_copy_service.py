"""services/copying.py (process_job, fail_poisoned) and services/sweep.py against the fakes.

Time is injected: `now` (wall clock, for leases) and `clock` (monotonic, for the time budget),
so that nothing here waits for real.
"""

from __future__ import annotations

import base64
import hashlib
import random
import threading
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest

from registry.domain.errors import SourceError
from registry.domain.jobs import CopyJob
from registry.domain.model import EPOCH, Registration
from registry.domain.vocabulary import FileState, State
from registry.identity import Principal
from registry.sealing import Sealer
from registry.services.copying import MIB, CopyPolicy, Outcome, block_ids, fail_poisoned, process_job
from registry.services.dependencies import Dependencies
from registry.services.registration import job_for, register, sealing_binding
from registry.services.sweep import requeue_stale
from registry.settings import Settings
from tests.builders import (
    SAS,
    TEST_SEALING_KEY,
    make_deps,
    make_settings,
    registration_body,
    served_bytes,
    source_url,
)
from tests.fakes import (
    T0,
    FakeBlobCopier,
    FakeClock,
    FakeJobQueue,
    FakeRegistrationStore,
    SimulatedCrash,
    StageCall,
)

ALICE = Principal("alice-oid-0001", "alice@contoso.com")
BIG = "weights/model.bin"


def payload(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


def md5_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()  # noqa: S324 - a checksum, not security


class Ticker:
    """A monotonic clock that moves `tick` seconds each time it is read."""

    def __init__(self, tick: float = 0.0) -> None:
        self.tick = tick
        self.t = 1000.0
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            self.t += self.tick
            return self.t


@dataclass
class World:
    store: FakeRegistrationStore = field(default_factory=FakeRegistrationStore)
    queue: FakeJobQueue = field(default_factory=FakeJobQueue)
    copier: FakeBlobCopier = field(default_factory=FakeBlobCopier)
    sealer: Sealer = field(default_factory=lambda: Sealer(TEST_SEALING_KEY))
    now: FakeClock = field(default_factory=FakeClock)
    clock: Ticker = field(default_factory=Ticker)
    policy: CopyPolicy = field(
        default_factory=lambda: CopyPolicy(
            block_size=MIB, concurrency=4, time_budget_seconds=100, lease_seconds=60
        )
    )
    settings: Settings = field(default_factory=make_settings)
    contents: dict[str, bytes] = field(default_factory=dict)
    urls: dict[str, str] = field(default_factory=dict)

    @property
    def deps(self) -> Dependencies:
        return make_deps(
            self.settings,
            store=self.store,
            queue=self.queue,
            blobs=self.copier,
            now=self.now,
            sealer=self.sealer,
            monotonic=self.clock,
        )

    def register(self, files: dict[str, bytes] | None = None, *, name: str = "codegen") -> Registration:
        """Register a model whose sources exist in the fake copier; returns the stored record."""
        files = files or default_files()
        body = registration_body()
        body["model_files"] = {target: source_url(f"{name}/{target}") for target in files}
        for target, data in files.items():
            self.copier.put_source(body["model_files"][target], data, content_md5=md5_b64(data))
        self.contents.update(files)
        self.urls.update(body["model_files"])
        registration = register(self.deps, ALICE, name, "1.0", body)
        self.queue.take()
        return registration

    def process(self, job: CopyJob, *, redelivered: bool = False, **policy: Any) -> Outcome:
        chosen = self.policy if not policy else CopyPolicy(**{**self.policy.__dict__, **policy})
        return process_job(job, self.deps, redelivered=redelivered, policy=chosen)

    def record(self, name: str = "codegen") -> Registration:
        found = self.store.peek(ALICE.id, name, "1.0")
        assert found is not None
        return found

    def run_to_end(self, job: CopyJob, limit: int = 100) -> list[Outcome]:
        """Process the job and every continuation it enqueues, as the queue trigger would."""
        outcomes = [self.process(job)]
        for _ in range(limit):
            jobs = self.queue.take()
            if not jobs:
                return outcomes
            assert len(jobs) == 1, jobs
            outcomes.append(self.process(jobs[0]))
        raise AssertionError("the copy never ended")

    def assert_copied(self, registration: Registration) -> None:
        for target, data in self.contents.items():
            assert served_bytes(self.store, self.copier, registration, target) == data, target


def default_files() -> dict[str, bytes]:
    return {
        "score.py": b"def init():\n    pass\n",
        "env.yml": b"name: env\n",
        "index.md": b"# Model\n",
        BIG: payload(3 * MIB + MIB // 2, seed=1),  # four blocks, the last one short
    }


def blocks_of(size: int) -> int:
    return -(-size // MIB)


@pytest.fixture
def world() -> World:
    return World()


# --------------------------------------------------------------------------------------------
# Copying to the end
# --------------------------------------------------------------------------------------------


def test_multi_block_files_are_copied_byte_identically_and_finished(world: World) -> None:
    files = default_files()
    files["second/big.bin"] = payload(2 * MIB, seed=2)  # exactly two blocks
    files["empty.txt"] = b""
    registration = world.register(files)
    assert world.process(job_for(registration)) is Outcome.FINISHED
    world.assert_copied(registration)
    record = world.record()
    assert record.state is State.FINISHED
    assert record.message == f"Registered {len(files)} files (revision 1)"
    assert record.lease_id == ""
    progress = world.store.peek_files(record)
    assert {p.target for p in progress} == set(files)
    for p in progress:
        assert p.state is FileState.FINISHED
        assert p.size == p.bytes_copied == len(files[p.target])
    expected_blocks = sum(blocks_of(len(d)) for d in files.values())
    assert len(world.copier.stage_calls) == expected_blocks  # every block staged once
    assert world.queue.sent == []


def test_blocks_are_staged_from_the_sealed_source_url_at_the_right_ranges(world: World) -> None:
    registration = world.register()
    world.process(job_for(registration))
    big = [c for c in world.copier.stage_calls if c.path == registration.blob_path(BIG)]
    size = len(world.contents[BIG])
    assert sorted((c.offset, c.length) for c in big) == [
        (i * MIB, min(MIB, size - i * MIB)) for i in range(blocks_of(size))
    ]
    assert {c.url for c in big} == {world.urls[BIG]}
    assert SAS in world.urls[BIG]
    assert world.copier.commit_calls[-1][0].startswith(f"{ALICE.id}/codegen/1.0/")


def test_source_checksums_are_kept(world: World) -> None:
    registration = world.register()
    world.process(job_for(registration))
    path = registration.blob_path(BIG)
    assert world.copier.committed[path].content_md5 == md5_b64(world.contents[BIG])


def test_sealed_sources_are_dropped_once_finished_but_other_secrets_kept(world: World) -> None:
    registration = world.register()
    sealed = world.sealer.unseal(world.record().sealed, sealing_binding(registration))
    assert sealed["model_files"]
    world.process(job_for(registration))
    record = world.record()
    remaining = world.sealer.unseal(record.sealed, sealing_binding(record))
    assert remaining["model_files"] == {}
    assert remaining["docker_passwords"] == sealed["docker_passwords"]


def test_registration_is_marked_picked_up(world: World) -> None:
    registration = world.register()
    world.copier.crash_on_stage_call = 1
    with pytest.raises(SimulatedCrash):
        world.process(job_for(registration), concurrency=1)
    record = world.record()
    assert record.picked_up is True
    assert record.lease_id != ""
    assert record.lease_until == T0 + timedelta(seconds=60)


# --------------------------------------------------------------------------------------------
# Time budget and continuations
# --------------------------------------------------------------------------------------------


def test_budget_exhausted_checkpoints_and_enqueues_a_continuation(world: World) -> None:
    registration = world.register()
    world.clock.tick = 1.0
    outcome = world.process(job_for(registration), time_budget_seconds=10, concurrency=1)
    assert outcome is Outcome.CONTINUED
    assert world.queue.jobs == [job_for(registration, "continue", 1)]
    assert world.queue.jobs[0].message_id != job_for(registration).message_id
    assert world.queue.sent[0].delay_seconds == 0
    record = world.record()
    assert record.state is State.IN_PROGRESS
    assert record.lease_id == ""  # released, so that the continuation may start at once
    copied = sum(p.bytes_copied for p in world.store.peek_files(record))
    assert 0 < copied < sum(len(d) for d in world.contents.values())


def test_repeated_continuations_finish_and_stage_every_block_once(world: World) -> None:
    registration = world.register()
    world.clock.tick = 1.0
    world.policy = CopyPolicy(block_size=MIB, concurrency=2, time_budget_seconds=2, lease_seconds=60)
    outcomes = world.run_to_end(job_for(registration))
    assert outcomes[-1] is Outcome.FINISHED
    assert outcomes.count(Outcome.CONTINUED) >= 2
    assert set(outcomes[:-1]) == {Outcome.CONTINUED}
    world.assert_copied(registration)
    expected = sum(blocks_of(len(d)) for d in world.contents.values())
    assert len(world.copier.stage_calls) == expected


def test_a_tiny_budget_still_makes_progress_every_slice(world: World) -> None:
    registration = world.register()
    world.clock.tick = 10.0
    world.policy = CopyPolicy(block_size=MIB, concurrency=1, time_budget_seconds=0.1, lease_seconds=60)
    outcomes = world.run_to_end(job_for(registration))
    assert outcomes[-1] is Outcome.FINISHED
    world.assert_copied(registration)


# --------------------------------------------------------------------------------------------
# Crashes, duplicates and leases
# --------------------------------------------------------------------------------------------


def continue_after_big_started(world: World, registration: Registration) -> None:
    """Run one slice whose budget runs out as soon as the big file's first block is staged."""

    def expire(number: int, call: StageCall) -> None:
        if call.path.endswith(BIG):
            world.clock.t += 10_000

    world.copier.before_stage = expire
    assert world.process(job_for(registration), concurrency=1) is Outcome.CONTINUED
    world.copier.before_stage = None
    big = next(p for p in world.store.peek_files(world.record()) if p.target == BIG)
    assert big.source_etag
    assert big.state is FileState.COPYING
    assert 0 < len(world.copier.staged[registration.blob_path(BIG)]) < blocks_of(len(world.contents[BIG]))


def crash_after(world: World, registration: Registration, staged: int) -> None:
    world.copier.crash_on_stage_call = staged + 1
    with pytest.raises(SimulatedCrash):
        world.process(job_for(registration), concurrency=1)
    world.copier.crash_on_stage_call = None
    assert len(world.copier.stage_calls) == staged + 1


@pytest.mark.parametrize("k", [0, 3, 4, 5, 6])
def test_after_a_crash_after_k_blocks_only_the_missing_blocks_are_staged(world: World, k: int) -> None:
    registration = world.register()
    total = sum(blocks_of(len(d)) for d in world.contents.values())
    crash_after(world, registration, k)
    before = list(world.copier.stage_calls)
    world.now.advance(61)  # the dead worker's lease has expired
    assert world.process(job_for(registration), concurrency=1) is Outcome.FINISHED
    again = world.copier.stage_calls[len(before) :]
    assert len(again) == total - k
    succeeded = {(c.path, c.block_id) for c in before[:k]}
    assert not succeeded & {(c.path, c.block_id) for c in again}
    world.assert_copied(registration)
    assert world.record().state is State.FINISHED


def test_resumed_copy_counts_the_blocks_staged_before_the_crash(world: World) -> None:
    registration = world.register()
    crash_after(world, registration, 5)  # three small files and two blocks of the big one
    world.now.advance(61)

    def expire(number: int, call: StageCall) -> None:
        world.clock.t += 10_000  # the budget runs out with this one block in flight

    world.copier.before_stage = expire
    assert world.process(job_for(registration), concurrency=1) is Outcome.CONTINUED
    big = next(p for p in world.store.peek_files(world.record()) if p.target == BIG)
    assert big.bytes_copied == 3 * MIB


def test_several_blocks_are_in_flight_at_once(world: World) -> None:
    registration = world.register()
    barrier = threading.Barrier(4, timeout=5)

    def together(number: int, call: StageCall) -> None:
        if number <= 4:
            barrier.wait()  # breaks (and fails the copy) unless four stage calls run at once

    world.copier.before_stage = together
    assert world.process(job_for(registration), concurrency=4) is Outcome.FINISHED
    world.assert_copied(registration)


def test_a_first_delivery_while_the_lease_is_held_is_a_duplicate_and_is_dropped(world: World) -> None:
    registration = world.register()
    crash_after(world, registration, 2)
    staged = len(world.copier.stage_calls)
    world.now.advance(30)  # lease (60 s) still held
    assert world.process(job_for(registration)) is Outcome.BUSY
    assert len(world.copier.stage_calls) == staged
    assert world.queue.sent == []
    assert world.record().state is State.IN_PROGRESS


def test_a_redelivery_while_its_dead_holder_keeps_the_lease_comes_back_when_the_lease_ends(
    world: World,
) -> None:
    registration = world.register()
    crash_after(world, registration, 2)
    staged = len(world.copier.stage_calls)
    lease_until = world.record().lease_until
    world.now.advance(1)  # the message reappears long before the lease (60 s) lapses
    assert world.process(job_for(registration), redelivered=True) is Outcome.BUSY
    assert len(world.copier.stage_calls) == staged
    assert len(world.queue.sent) == 1
    sent = world.queue.sent[0]
    assert sent.job == job_for(registration, "retry", int(lease_until.timestamp()))
    assert sent.delay_seconds == pytest.approx((lease_until - world.now()).total_seconds() + 1)
    # That delayed message then finds the lease expired and resumes.
    world.now.advance(sent.delay_seconds)
    assert world.process(world.queue.take()[0]) is Outcome.FINISHED
    world.assert_copied(registration)


def test_worker_whose_lease_was_taken_over_stops_without_ending_the_registration(world: World) -> None:
    registration = world.register()

    def take_over(number: int, call: StageCall) -> None:
        if number == 1:
            world.store.update(ALICE.id, "codegen", "1.0", lease_id="other-worker")

    world.copier.before_stage = take_over
    assert world.process(job_for(registration), concurrency=1) is Outcome.LOST
    record = world.record()
    assert record.state is State.IN_PROGRESS
    assert record.lease_id == "other-worker"


# --------------------------------------------------------------------------------------------
# Source errors
# --------------------------------------------------------------------------------------------


def test_missing_source_fails_the_registration_naming_the_file_without_the_sas(world: World) -> None:
    registration = world.register()
    world.copier.delete_source(world.urls[BIG])
    assert world.process(job_for(registration)) is Outcome.FAILED
    record = world.record()
    assert record.state is State.FAILED
    assert BIG in record.message
    assert "404" in record.message
    assert "sig=" not in record.message
    assert SAS not in record.message
    assert record.lease_id == ""


def test_permanent_error_while_staging_fails_the_registration(world: World) -> None:
    registration = world.register()
    world.copier.fail(
        world.urls[BIG],
        permanent=True,
        reason="the source refused access (403): its SAS expired",
        on=("stage",),
    )
    assert world.process(job_for(registration)) is Outcome.FAILED
    record = world.record()
    assert record.state is State.FAILED
    assert BIG in record.message
    assert "403" in record.message
    assert "sig=" not in record.message


def test_source_changed_between_slices_fails_the_registration(world: World) -> None:
    registration = world.register()
    continue_after_big_started(world, registration)
    world.copier.put_source(world.urls[BIG], payload(len(world.contents[BIG]), seed=99))
    assert world.process(world.queue.take()[0]) is Outcome.FAILED
    record = world.record()
    assert record.state is State.FAILED
    assert BIG in record.message
    assert "changed" in record.message
    assert world.copier.blob(registration.blob_path(BIG)) is None  # never committed


def test_source_overwritten_mid_slice_fails_before_commit(world: World) -> None:
    registration = world.register(
        {"index.md": b"# x\n", "score.py": b"", "env.yml": b"a: 1\n", BIG: payload(3 * MIB, 3)}
    )

    def overwrite(number: int, call: StageCall) -> None:
        if call.path.endswith(BIG) and call.offset == MIB:
            world.copier.put_source(world.urls[BIG], payload(3 * MIB, seed=4))

    world.copier.before_stage = overwrite
    assert world.process(job_for(registration), concurrency=1) is Outcome.FAILED
    assert "changed" in world.record().message
    assert world.copier.blob(registration.blob_path(BIG)) is None


def test_source_with_another_size_fails_as_changed(world: World) -> None:
    registration = world.register()
    continue_after_big_started(world, registration)
    world.copier.put_source(world.urls[BIG], world.contents[BIG] + b"more")
    assert world.process(world.queue.take()[0]) is Outcome.FAILED
    assert "changed" in world.record().message


def test_transient_source_error_is_raised_and_releases_the_lease_with_last_error(world: World) -> None:
    registration = world.register()
    world.copier.fail(world.urls[BIG], permanent=False, reason="the source could not be reached (503)")
    with pytest.raises(SourceError) as raised:
        world.process(job_for(registration))
    assert raised.value.permanent is False
    record = world.record()
    assert record.state is State.IN_PROGRESS
    assert record.lease_id == ""
    assert record.lease_until == EPOCH
    assert "503" in record.last_error
    # The retried message (same time, no lease) then copies everything.
    world.copier.heal(world.urls[BIG])
    assert world.process(job_for(registration)) is Outcome.FINISHED
    world.assert_copied(registration)


def test_transient_error_while_staging_is_raised(world: World) -> None:
    registration = world.register()
    world.copier.fail(world.urls[BIG], permanent=False, on=("stage",))
    with pytest.raises(SourceError):
        world.process(job_for(registration))
    assert world.record().lease_id == ""
    assert world.record().last_error


# --------------------------------------------------------------------------------------------
# Stale and unknown jobs
# --------------------------------------------------------------------------------------------


def test_job_for_an_unknown_registration_is_ignored(world: World) -> None:
    assert world.process(CopyJob(ALICE.id, "nothing", "1.0", "abc")) is Outcome.IGNORED
    assert world.copier.stage_calls == []
    assert world.queue.sent == []


def test_job_with_a_stale_registration_id_is_ignored(world: World) -> None:
    registration = world.register()
    stale = CopyJob(registration.owner, registration.name, registration.version, "an-older-registration")
    assert world.process(stale) is Outcome.IGNORED
    assert world.copier.stage_calls == []
    assert world.record().lease_id == ""


@pytest.mark.parametrize("state", [State.FINISHED, State.FAILED])
def test_job_for_an_ended_registration_is_ignored(world: World, state: State) -> None:
    registration = world.register()
    world.store.update(ALICE.id, "codegen", "1.0", state=state)
    assert world.process(job_for(registration)) is Outcome.IGNORED
    assert world.copier.stage_calls == []


def test_duplicate_message_after_finishing_is_ignored(world: World) -> None:
    registration = world.register()
    assert world.process(job_for(registration)) is Outcome.FINISHED
    staged = len(world.copier.stage_calls)
    assert world.process(job_for(registration)) is Outcome.IGNORED
    assert len(world.copier.stage_calls) == staged


def test_file_committed_just_before_a_crash_is_not_copied_again(world: World) -> None:
    registration = world.register()

    def die_after_committing_the_big_file(path: str) -> None:
        if path.endswith(BIG):
            raise SimulatedCrash("died before the checkpoint")

    world.copier.after_commit = die_after_committing_the_big_file
    with pytest.raises(SimulatedCrash):
        world.process(job_for(registration))
    world.copier.after_commit = None
    staged, commits = len(world.copier.stage_calls), len(world.copier.commit_calls)
    world.now.advance(61)
    assert world.process(job_for(registration)) is Outcome.FINISHED
    assert len(world.copier.stage_calls) == staged
    assert len(world.copier.commit_calls) == commits
    world.assert_copied(registration)


# --------------------------------------------------------------------------------------------
# Restart after failure
# --------------------------------------------------------------------------------------------


def test_restart_after_a_missing_source_is_uploaded_finishes(world: World) -> None:
    registration = world.register()
    world.copier.delete_source(world.urls[BIG])
    assert world.process(job_for(registration)) is Outcome.FAILED
    world.copier.put_source(world.urls[BIG], world.contents[BIG])
    body = registration_body()
    body["model_files"] = dict(world.urls)
    register(world.deps, ALICE, "codegen", "1.0", body)
    assert world.record().state is State.IN_PROGRESS
    outcomes = world.run_to_end(world.queue.take()[0])
    assert outcomes[-1] is Outcome.FINISHED
    world.assert_copied(registration)


def test_the_file_that_failed_reads_failed_in_its_progress(world: World) -> None:
    registration = world.register()
    continue_after_big_started(world, registration)
    world.copier.put_source(world.urls[BIG], payload(len(world.contents[BIG]), seed=99))
    world.process(world.queue.take()[0])
    big = next(p for p in world.store.peek_files(world.record()) if p.target == BIG)
    assert big.state is FileState.FAILED
    assert "changed" in big.error


def test_restart_after_a_changed_source_copies_the_new_version(world: World) -> None:
    registration = world.register()
    continue_after_big_started(world, registration)
    new_version = payload(len(world.contents[BIG]), seed=99)
    world.copier.put_source(world.urls[BIG], new_version)
    assert world.process(world.queue.take()[0]) is Outcome.FAILED
    body = registration_body()
    body["model_files"] = dict(world.urls)
    register(world.deps, ALICE, "codegen", "1.0", body)
    outcomes = world.run_to_end(world.queue.take()[0])
    assert outcomes[-1] is Outcome.FINISHED
    assert served_bytes(world.store, world.copier, registration, BIG) == new_version


# --------------------------------------------------------------------------------------------
# Poison messages
# --------------------------------------------------------------------------------------------


def test_fail_poisoned_marks_in_progress_failed_with_the_last_error(world: World) -> None:
    registration = world.register()
    world.copier.fail(world.urls[BIG], permanent=False, reason="the source could not be reached (503)")
    for _ in range(5):
        with pytest.raises(SourceError):
            world.process(job_for(registration))
    assert fail_poisoned(job_for(registration).to_json(), world.deps) is True
    record = world.record()
    assert record.state is State.FAILED
    assert "503" in record.message
    assert "sig=" not in record.message


def test_fail_poisoned_without_a_recorded_error_still_fails(world: World) -> None:
    registration = world.register()
    assert fail_poisoned(job_for(registration).to_json().encode(), world.deps) is True
    assert world.record().state is State.FAILED
    assert "unknown error" in world.record().message


def test_fail_poisoned_leaves_a_registration_alone_while_another_worker_holds_a_live_lease(
    world: World,
) -> None:
    registration = world.register()
    crash_after(world, registration, 2)  # its lease runs for another 60 s
    assert fail_poisoned(job_for(registration).to_json(), world.deps) is False
    assert world.record().state is State.IN_PROGRESS
    world.now.advance(61)
    assert fail_poisoned(job_for(registration).to_json(), world.deps) is True
    assert world.record().state is State.FAILED


def test_fail_poisoned_ignores_stale_and_ended_registrations(world: World) -> None:
    registration = world.register()
    stale = CopyJob(registration.owner, registration.name, registration.version, "older")
    assert fail_poisoned(stale.to_json(), world.deps) is False
    assert world.record().state is State.IN_PROGRESS
    world.store.update(ALICE.id, "codegen", "1.0", state=State.FINISHED)
    assert fail_poisoned(job_for(registration).to_json(), world.deps) is False
    assert world.record().state is State.FINISHED
    assert fail_poisoned(CopyJob(ALICE.id, "gone", "1", "x").to_json(), world.deps) is False


def test_fail_poisoned_refuses_a_message_that_is_not_a_copy_job(world: World) -> None:
    with pytest.raises(ValueError, match="unknown job kind"):
        fail_poisoned('{"kind": "other", "schema": 1}', world.deps)


# --------------------------------------------------------------------------------------------
# The sweep
# --------------------------------------------------------------------------------------------


def test_sweep_requeues_only_quiet_unleased_in_progress_registrations_once(world: World) -> None:
    quiet = world.register(name="quiet")
    expired = world.register(name="expired")
    world.register(name="leased")
    world.register(name="finished")
    world.register(name="failed")
    world.store.update(ALICE.id, "expired", "1.0", lease_id="dead", lease_until=T0 + timedelta(seconds=60))
    world.store.update(ALICE.id, "leased", "1.0", lease_id="alive", lease_until=T0 + timedelta(hours=2))
    world.store.update(ALICE.id, "finished", "1.0", state=State.FINISHED)
    world.store.update(ALICE.id, "failed", "1.0", state=State.FAILED)
    world.now.advance(1000)
    world.register(name="recent")

    def sweep() -> int:
        return requeue_stale(world.deps)

    assert sweep() == 2
    assert sorted(j.name for j in world.queue.jobs) == ["expired", "quiet"]
    assert {j.registration_id for j in world.queue.jobs} == {quiet.registration_id, expired.registration_id}
    assert world.record("quiet").last_progress_at == world.now()
    world.queue.take()
    assert sweep() == 0  # touched: the next sweep leaves them for another stale period
    assert world.queue.sent == []
    world.now.advance(901)
    assert sweep() == 3  # now "recent" is quiet too


def test_sweep_requeue_lets_the_copy_finish(world: World) -> None:
    registration = world.register()
    world.now.advance(1000)
    assert requeue_stale(world.deps) == 1
    assert world.process(world.queue.take()[0]) is Outcome.FINISHED
    world.assert_copied(registration)


# --------------------------------------------------------------------------------------------
# Block ids
# --------------------------------------------------------------------------------------------


def test_block_ids_are_deterministic_equal_length_and_tied_to_the_source_version() -> None:
    ids = block_ids("reg-1", '"0x1"', MIB, 3 * MIB + 1)
    assert ids == block_ids("reg-1", '"0x1"', MIB, 3 * MIB + 1)
    assert len(ids) == 4
    assert len(set(ids)) == 4
    assert len({len(i) for i in ids}) == 1
    assert not set(ids) & set(block_ids("reg-1", '"0x2"', MIB, 3 * MIB + 1))
    assert not set(ids) & set(block_ids("reg-1", '"0x1"', 2 * MIB, 3 * MIB + 1))
    assert not set(ids) & set(block_ids("reg-2", '"0x1"', MIB, 3 * MIB + 1))
