"""The Service Bus job worker (registry/blueprints/servicebus_jobs.py) with func.ServiceBusMessage inputs.

`job_worker` is called as the Functions host calls it, with the message the host would build
from what the adapter sent (body, message id, content type, application properties) and a
delivery count. Its dependencies are the in-memory fakes. Raising is how a Service Bus trigger
abandons a message: the host redelivers it until the queue's max delivery count, then Service
Bus dead-letters it.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import azure.functions as func
import pytest
from azure.functions.servicebus import ServiceBusMessage

from registry.adapters.servicebus import to_message
from registry.blueprints import servicebus_jobs
from registry.domain.errors import SourceError
from registry.domain.jobs import CopyJob, Job, RegisterJob
from registry.domain.model import Registration
from registry.domain.vocabulary import FileState, State
from registry.identity import Principal
from registry.sealing import Sealer
from registry.services.copying import MIB
from registry.services.dependencies import Dependencies
from registry.services.jobs import UnusableMessage
from registry.services.registration import register
from registry.settings import Settings
from tests.builders import TEST_SEALING_KEY, make_deps, make_settings, registration_body, source_url
from tests.fakes import FakeBlobCopier, FakeClock, FakeJobQueue, FakeRegistrationStore

EMULATOR_CONNECTION = (
    "Endpoint=sb://localhost;SharedAccessKeyName=RootManageSharedAccessKey;"
    "SharedAccessKey=SAS_KEY_VALUE;UseDevelopmentEmulator=true;"
)
BULK_OWNER = "bulk-owner-0001"
ALICE = Principal("alice-oid-0001", "alice@contoso.com")
MAX_DELIVERIES = 5


def servicebus_settings(**overrides: str) -> Settings:
    env = {
        "REGISTRY_JOB_QUEUE": "servicebus",
        "ServiceBusConnection": EMULATOR_CONNECTION,
        "REGISTRY_BULK_OWNERS": f"{BULK_OWNER}, another-bulk-owner",
        "REGISTRY_SERVICEBUS_MAX_DELIVERIES": str(MAX_DELIVERIES),
    }
    env.update(overrides)
    return make_settings(**env)


class Ticking:
    """A monotonic clock that jumps a second each time it is read: every budget runs out at once."""

    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        self.t += 1.0
        return self.t


@dataclass
class Deps:
    """The fakes the Service Bus worker runs on, and the Dependencies wired to them."""

    settings: Settings = field(default_factory=servicebus_settings)
    store: FakeRegistrationStore = field(default_factory=FakeRegistrationStore)
    queue: FakeJobQueue = field(default_factory=FakeJobQueue)
    copier: FakeBlobCopier = field(default_factory=FakeBlobCopier)
    sealer: Sealer = field(default_factory=lambda: Sealer(TEST_SEALING_KEY))
    monotonic: Callable[[], float] = time.monotonic

    @property
    def wired(self) -> Dependencies:
        return make_deps(
            self.settings,
            store=self.store,
            queue=self.queue,
            blobs=self.copier,
            sealer=self.sealer,
            now=FakeClock(datetime.now(UTC)),
            monotonic=self.monotonic,
        )

    def slice_per_block(self) -> None:
        """Every slice copies a block, then continues in a new message."""
        self.settings = servicebus_settings(
            REGISTRY_COPY_BLOCK_MIB="1", REGISTRY_COPY_CONCURRENCY="1", REGISTRY_COPY_TIME_BUDGET_SECONDS="1"
        )
        self.monotonic = Ticking()

    def register(self, extra: dict[str, bytes] | None = None, *, name: str = "codegen") -> Registration:
        """Register (as the HTTP function does) a model whose sources the fake copier holds:
        three small files, and `extra` ones."""
        files = {
            "score.py": b"print('hi')\n",
            "env.yml": b"name: env\n",
            "index.md": b"# Hi\n",
            **(extra or {}),
        }
        body = registration_body()
        body["model_files"] = {target: source_url(f"{name}/{target}") for target in files}
        for target, data in files.items():
            self.copier.put_source(body["model_files"][target], data)
        return register(self.wired, ALICE, name, "1.0", body)

    def record(self, registration: Registration) -> Registration:
        found = self.store.peek(registration.owner, registration.name, registration.version)
        assert found is not None
        return found


@pytest.fixture
def deps() -> Deps:
    return Deps()


def delivered(job: Job | bytes, delivery_count: int = 1) -> func.ServiceBusMessage:
    """The message the Functions host hands the trigger for what the adapter sent."""
    if isinstance(job, bytes):
        body, message_id, properties = job, "not-a-job", {}
    else:
        sent = to_message(job, 0, datetime.now(UTC))
        raw = sent.body
        body = raw if isinstance(raw, bytes) else b"".join(raw)
        message_id = str(sent.message_id)
        properties = {
            k.decode() if isinstance(k, bytes) else k: v
            for k, v in (sent.application_properties or {}).items()
        }
    now = datetime.now(UTC)
    return ServiceBusMessage(
        body=body,
        message_id=message_id,
        content_type="application/json",
        delivery_count=delivery_count,
        application_properties=properties,
        user_properties={},
        enqueued_time_utc=now,
        locked_until=now + timedelta(minutes=5),
        lock_token="00000000-0000-0000-0000-000000000000",
        sequence_number=1,
    )


def run(deps: Deps, msg: func.ServiceBusMessage) -> None:
    """The trigger's work for one delivery, as job_worker does it with the app's dependencies."""
    servicebus_jobs.process_message(msg, deps.wired)


def test_the_message_the_host_builds_carries_what_the_adapter_sent(deps: Deps) -> None:
    registration = deps.register()
    job = deps.queue.take()[0]

    msg = delivered(job, 3)

    assert msg.message_id == job.message_id == f"copy:{registration.registration_id}:start:0"
    assert msg.delivery_count == 3
    assert msg.content_type == "application/json"
    assert msg.application_properties == {"schema": 1, "kind": "copy"}
    assert CopyJob.from_json(msg.get_body()) == job


# ---------------------------------------------------------------------------------------------
# Copy jobs
# ---------------------------------------------------------------------------------------------


def test_a_copy_job_on_its_first_delivery_copies_every_file_and_finishes(deps: Deps) -> None:
    registration = deps.register()
    [job] = deps.queue.take()

    run(deps, delivered(job))

    record = deps.record(registration)
    assert record.state is State.FINISHED
    assert record.message == "Registered 3 files (revision 1)"
    assert not record.lease_id
    assert all(f.state is FileState.FINISHED for f in deps.store.peek_files(record))
    assert deps.copier.blob(registration.blob_path("score.py")) == b"print('hi')\n"
    assert deps.queue.sent == []  # nothing left to do


def test_a_stale_job_for_a_finished_registration_is_ignored(deps: Deps) -> None:
    registration = deps.register()
    [job] = deps.queue.take()
    run(deps, delivered(job))
    stages = deps.copier.staged_count()

    run(deps, delivered(job, 2))  # delivered again after it was done (the lock was lost, say)

    assert deps.record(registration).state is State.FINISHED
    assert deps.copier.staged_count() == stages
    assert deps.queue.sent == []


def test_a_long_copy_continues_in_a_new_message_with_the_next_sequence(deps: Deps) -> None:
    deps.slice_per_block()
    registration = deps.register({"weights.bin": random.Random(7).randbytes(3 * MIB)})
    [job] = deps.queue.take()

    run(deps, delivered(job))

    assert deps.record(registration).state is State.IN_PROGRESS
    [continuation] = deps.queue.take()
    assert continuation.purpose == "continue"
    assert continuation.sequence >= 1
    run(deps, delivered(continuation))
    [after] = deps.queue.take()
    assert after.purpose == "continue"
    assert after.sequence > continuation.sequence
    assert len({job.message_id, continuation.message_id, after.message_id}) == 3


def test_a_redelivery_while_a_dead_holder_keeps_the_lease_sends_a_delayed_retry(deps: Deps) -> None:
    registration = deps.register()
    [job] = deps.queue.take()
    # The first delivery's worker took the lease and died (the lock lapsed, or the host abandoned it).
    lease_until = datetime.now(UTC) + timedelta(seconds=120)
    deps.store.update(*_key(registration), lease_id="dead-worker", lease_until=lease_until, picked_up=True)

    run(deps, delivered(job, 2))

    [sent] = deps.queue.sent
    assert sent.job == CopyJob(
        registration.owner,
        registration.name,
        registration.version,
        registration.registration_id,
        "retry",
        int(lease_until.timestamp()),  # one retry per held lease
    )
    assert sent.job.message_id != job.message_id
    assert 110 <= sent.delay_seconds <= 122  # when the lease lapses, and a second more
    record = deps.record(registration)
    assert record.state is State.IN_PROGRESS
    assert record.lease_id == "dead-worker"
    assert deps.copier.staged_count() == 0


def test_a_first_delivery_while_another_worker_holds_the_lease_is_a_duplicate_and_sends_nothing(
    deps: Deps,
) -> None:
    registration = deps.register()
    [job] = deps.queue.take()
    lease_until = datetime.now(UTC) + timedelta(seconds=120)
    deps.store.update(*_key(registration), lease_id="live-worker", lease_until=lease_until)

    run(deps, delivered(job, 1))

    assert deps.queue.sent == []
    assert deps.record(registration).lease_id == "live-worker"


def test_the_retry_takes_over_once_the_dead_holders_lease_lapsed_and_finishes(deps: Deps) -> None:
    registration = deps.register()
    [job] = deps.queue.take()
    deps.store.update(
        *_key(registration), lease_id="dead-worker", lease_until=datetime.now(UTC) + timedelta(seconds=60)
    )
    run(deps, delivered(job, 2))
    [retry] = deps.queue.take()
    deps.store.update(*_key(registration), lease_until=datetime.now(UTC) - timedelta(seconds=1))

    run(deps, delivered(retry, 1))

    record = deps.record(registration)
    assert record.state is State.FINISHED
    assert deps.queue.sent == []


def _key(registration: Registration) -> tuple[str, str, str]:
    return registration.owner, registration.name, registration.version


# ---------------------------------------------------------------------------------------------
# A message that keeps failing
# ---------------------------------------------------------------------------------------------


def test_a_passing_failure_comes_back_with_growing_backoff_until_its_attempts_run_out_then_fails(
    deps: Deps,
) -> None:
    registration = deps.register()
    [job] = deps.queue.take()
    broken = source_url("codegen/env.yml")
    deps.copier.fail(broken, permanent=False, reason="the source could not be reached (503)")

    delays = []
    for attempt in range(1, MAX_DELIVERIES):
        run(deps, delivered(job, 1))  # completes: the retry is a scheduled copy of the job
        [sent] = deps.queue.sent
        deps.queue.sent.clear()
        assert isinstance(sent.job, CopyJob)
        assert sent.job.attempt == attempt
        assert sent.job.message_id != job.message_id
        delays.append(sent.delay_seconds)
        record = deps.record(registration)
        assert record.state is State.IN_PROGRESS, attempt
        assert not record.lease_id  # released, so the retry can go on
        job = sent.job
    assert delays == sorted(delays)
    assert delays[0] < delays[-1] <= 300

    # The attempts ran out: the failure is recorded and the exception propagates, so that
    # Service Bus (after its own deliveries) dead-letters the message.
    with pytest.raises(SourceError, match="503"):
        run(deps, delivered(job, 1))

    record = deps.record(registration)
    assert record.state is State.FAILED
    assert record.message == (
        "Copy failed after repeated attempts: SourceError: the source could not be reached (503)"
    )
    assert "sig=" not in record.message
    assert deps.queue.sent == []


def test_the_attempts_follow_the_max_deliveries_setting(deps: Deps) -> None:
    deps.settings = servicebus_settings(REGISTRY_SERVICEBUS_MAX_DELIVERIES="2")
    registration = deps.register()
    [job] = deps.queue.take()
    deps.copier.fail(source_url("codegen/score.py"), permanent=False)

    run(deps, delivered(job, 1))
    assert deps.record(registration).state is State.IN_PROGRESS
    [retry] = deps.queue.take()
    with pytest.raises(SourceError):
        run(deps, delivered(retry, 1))
    assert deps.record(registration).state is State.FAILED


def test_a_permanent_source_error_fails_the_registration_on_the_first_delivery_without_raising(
    deps: Deps,
) -> None:
    registration = deps.register()
    [job] = deps.queue.take()
    deps.copier.fail(source_url("codegen/index.md"), permanent=True)

    run(deps, delivered(job, 1))

    record = deps.record(registration)
    assert record.state is State.FAILED
    assert "index.md" in record.message and "404" in record.message


def test_the_last_delivery_records_no_failure_on_a_registration_registered_anew_meanwhile(deps: Deps) -> None:
    registration = deps.register()
    [job] = deps.queue.take()
    deps.copier.fail(source_url("codegen/score.py"), permanent=False, on=("stage",))
    # Deleted and registered again by its owner while this delivery copies: a new registration id.
    deps.copier.before_stage = lambda number, call: deps.store.update(
        *_key(registration), registration_id="a-newer-registration", lease_id="", state=State.IN_PROGRESS
    )

    with contextlib.suppress(SourceError):  # or the slice sees it lost the registration and stops
        run(deps, delivered(job, MAX_DELIVERIES))

    record = deps.record(registration)
    assert record.registration_id == "a-newer-registration"
    assert record.state is State.IN_PROGRESS
    assert "repeated attempts" not in record.message


def test_the_last_delivery_does_not_bring_back_a_registration_deleted_meanwhile(deps: Deps) -> None:
    registration = deps.register()
    [job] = deps.queue.take()
    deps.copier.fail(source_url("codegen/score.py"), permanent=False, on=("stage",))

    def delete(number: int, call: Any) -> None:
        current = deps.store.peek(*_key(registration))
        if current is not None:
            deps.store.delete(current)

    deps.copier.before_stage = delete

    with contextlib.suppress(SourceError):  # or the slice sees it lost the registration and stops
        run(deps, delivered(job, MAX_DELIVERIES))

    assert deps.store.peek(*_key(registration)) is None


# ---------------------------------------------------------------------------------------------
# Messages that are not jobs
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b"not json at all",
        b'{"schema": 2, "kind": "copy", "owner": "a", "name": "b", "version": "1", "registration_id": "r"}',
        b'{"schema": 1, "kind": "delete-everything"}',
        b'{"schema": 1, "kind": "copy", "owner": "a"}',
        b"[1, 2, 3]",
    ],
    ids=["not-json", "other-schema", "unknown-kind", "missing-fields", "not-an-object"],
)
@pytest.mark.parametrize("delivery", [1, MAX_DELIVERIES])
def test_an_unparsable_message_raises_without_touching_any_registration(
    deps: Deps, body: bytes, delivery: int
) -> None:
    registration = deps.register()
    deps.queue.take()
    before = deps.store.all()
    deps.store.calls.clear()

    with pytest.raises(UnusableMessage):
        run(deps, delivered(body, delivery))

    assert deps.store.all() == before
    assert deps.record(registration).state is State.IN_PROGRESS
    assert not {"insert", "replace", "insert_files", "replace_file"} & set(deps.store.calls)
    assert deps.queue.sent == []


# ---------------------------------------------------------------------------------------------
# Bulk registrations
# ---------------------------------------------------------------------------------------------


def bulk_job(owner: str = BULK_OWNER, **changes: Any) -> RegisterJob:
    return RegisterJob(owner, "codegen", "1.0", registration_body(**changes), owner_name="Bulk Owner")


def test_a_bulk_registration_from_an_allowed_owner_is_recorded_and_its_copy_enqueued(deps: Deps) -> None:
    job = bulk_job()

    run(deps, delivered(job))

    record = deps.store.peek(BULK_OWNER, "codegen", "1.0")
    assert record is not None
    assert record.state is State.IN_PROGRESS
    assert record.owner_name == "Bulk Owner"
    assert sorted(record.file_names) == sorted(job.body["model_files"])
    [copy] = deps.queue.jobs
    assert copy == CopyJob(BULK_OWNER, "codegen", "1.0", record.registration_id, "start", 0)


def test_a_redelivered_bulk_registration_registers_nothing_twice(deps: Deps) -> None:
    job = bulk_job()
    run(deps, delivered(job))
    first = deps.store.peek(BULK_OWNER, "codegen", "1.0")

    run(deps, delivered(job, 2))

    assert len(deps.store.all()) == 1
    again = deps.store.peek(BULK_OWNER, "codegen", "1.0")
    assert first is not None and again is not None
    assert again.registration_id == first.registration_id


def test_a_bulk_registration_from_an_owner_not_allowed_raises_and_records_nothing(deps: Deps) -> None:
    job = bulk_job(owner="mallory-oid-0666")

    with pytest.raises(UnusableMessage, match="REGISTRY_BULK_OWNERS"):
        run(deps, delivered(job))

    assert deps.store.all() == []
    assert deps.queue.sent == []


def test_bulk_registration_is_refused_to_everyone_when_no_owner_is_allowed(deps: Deps) -> None:
    deps.settings = servicebus_settings(REGISTRY_BULK_OWNERS="")

    with pytest.raises(UnusableMessage):
        run(deps, delivered(bulk_job()))

    assert deps.store.all() == []


def test_an_invalid_bulk_registration_from_an_allowed_owner_ends_failed_with_its_reason(deps: Deps) -> None:
    job = bulk_job(model_config={"type": "NOT-A-TYPE", "description": "bad"})

    run(deps, delivered(job))  # does not raise: retrying cannot help, and the owner can read why

    record = deps.store.peek(BULK_OWNER, "codegen", "1.0")
    assert record is not None
    assert record.state is State.FAILED
    assert record.message.startswith("Invalid registration:")
    assert deps.queue.sent == []


# ---------------------------------------------------------------------------------------------
# Message ids across retries and continuations
# ---------------------------------------------------------------------------------------------


def test_the_continuation_after_a_retry_has_a_message_id_not_used_before(deps: Deps) -> None:
    deps.slice_per_block()
    registration = deps.register({"weights.bin": random.Random(7).randbytes(4 * MIB)})
    [start] = deps.queue.take()
    run(deps, delivered(start))
    [continue_1] = deps.queue.take()
    # continue:1's worker dies holding the lease; its redelivery finds the lease still held.
    deps.store.update(
        *_key(registration), lease_id="dead-worker", lease_until=datetime.now(UTC) + timedelta(seconds=60)
    )
    run(deps, delivered(continue_1, 2))
    [retry] = deps.queue.take()
    assert retry.purpose == "retry"
    deps.store.update(*_key(registration), lease_until=datetime.now(UTC) - timedelta(seconds=1))

    run(deps, delivered(retry, 1))

    # Were it continue:1 again, duplicate detection would drop it and the copy would stall.
    [after_retry] = deps.queue.take()
    assert after_retry.purpose == "continue"
    assert after_retry.message_id not in {start.message_id, continue_1.message_id, retry.message_id}


def test_a_retry_redelivered_while_a_dead_holder_keeps_the_lease_again_gets_a_new_message_id(
    deps: Deps,
) -> None:
    registration = deps.register()
    [job] = deps.queue.take()
    held: dict[str, Any] = {
        "lease_id": "dead-worker-1",
        "lease_until": datetime.now(UTC) + timedelta(seconds=60),
    }
    deps.store.update(*_key(registration), **held)
    run(deps, delivered(job, 2))
    [retry] = deps.queue.take()
    # The retry's worker took over, failed holding the lease, and the host redelivered it at once.
    held = {"lease_id": "dead-worker-2", "lease_until": datetime.now(UTC) + timedelta(seconds=90)}
    deps.store.update(*_key(registration), **held)

    run(deps, delivered(retry, 2))

    [again] = deps.queue.take()
    assert again.purpose == "retry"
    assert again.message_id != retry.message_id
