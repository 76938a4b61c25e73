"""registry/adapters/servicebus.py against a fake at the SDK boundary.

The fake ServiceBusClient hands out one fake sender that records what it is given. Its batches
are the SDK's own ServiceBusMessageBatch (with a small size limit), so that packing, and the
MessageSizeExceededError a full batch raises, are the real ones; nothing touches the network.
"""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from azure.servicebus import ServiceBusMessage, ServiceBusMessageBatch
from azure.servicebus.exceptions import (
    MessageSizeExceededError,
    OperationTimeoutError,
    ServiceBusConnectionError,
    ServiceBusError,
    ServiceBusServerBusyError,
)

from registry.adapters.servicebus import CONTENT_TYPE, MessageTooLarge, ServiceBusJobQueue, to_message
from registry.domain.errors import StorageUnavailable
from registry.domain.jobs import JOB_SCHEMA, CopyJob, Job, RegisterJob, parse_job
from tests.builders import registration_body

QUEUE = "registration-jobs"
T0 = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
SMALL_BATCH = 4 * 1024  # bytes: a handful of job messages per batch


def copy_job(purpose: str = "start", sequence: int = 0, registration_id: str = "0" * 32) -> CopyJob:
    return CopyJob("alice-oid-0001", "codegen", "1.0", registration_id, purpose, sequence)


def body_of(message: ServiceBusMessage) -> bytes:
    body = message.body
    return body if isinstance(body, bytes) else b"".join(body)


class RecordingBatch(ServiceBusMessageBatch):
    """The SDK's batch (its size accounting and errors), remembering what was added to it."""

    def __init__(self, max_size_in_bytes: int) -> None:
        super().__init__(max_size_in_bytes=max_size_in_bytes)
        self.added: list[ServiceBusMessage] = []

    def add_message(self, message: Any) -> None:
        super().add_message(message)  # raises MessageSizeExceededError when full
        self.added.append(message)


class FakeSender:
    """What ServiceBusJobQueue uses of ServiceBusSender: send_messages, create_message_batch, close."""

    def __init__(self, batch_limit: int = SMALL_BATCH) -> None:
        self.batch_limit = batch_limit
        self.sends: list[tuple[str, list[ServiceBusMessage]]] = []  # ("message" | "batch", messages)
        self.batches_created = 0
        self.failure: Exception | None = None
        self.closed = False
        self.pause = 0.0  # seconds inside send_messages, to give races a chance
        self._guard = threading.Lock()
        self.inside = 0
        self.most_inside = 0

    def send_messages(self, message: Any, *, timeout: float | None = None) -> None:
        with self._guard:
            self.inside += 1
            self.most_inside = max(self.most_inside, self.inside)
        try:
            if self.pause:
                time.sleep(self.pause)
            if self.failure is not None:
                raise self.failure
            if isinstance(message, ServiceBusMessageBatch):
                if len(message) == 0:
                    return  # the SDK sends nothing for an empty batch
                assert isinstance(message, RecordingBatch)
                self.sends.append(("batch", list(message.added)))
            elif isinstance(message, list):
                self.sends.append(("batch", list(message)))
            else:
                assert isinstance(message, ServiceBusMessage)
                if len(body_of(message)) > self.batch_limit:
                    raise MessageSizeExceededError(message="the message is larger than the link allows")
                self.sends.append(("message", [message]))
        finally:
            with self._guard:
                self.inside -= 1

    def create_message_batch(self, max_size_in_bytes: int | None = None) -> ServiceBusMessageBatch:
        if self.failure is not None:
            raise self.failure
        self.batches_created += 1
        return RecordingBatch(min(max_size_in_bytes or self.batch_limit, self.batch_limit))

    def close(self) -> None:
        self.closed = True

    @property
    def messages(self) -> list[ServiceBusMessage]:
        return [m for _, sent in self.sends for m in sent]


class FakeClient:
    def __init__(self, sender: FakeSender | None = None) -> None:
        self.sender = sender or FakeSender()
        self.sender_requests: list[str] = []
        self.failure: Exception | None = None

    def get_queue_sender(self, queue_name: str, **kwargs: Any) -> FakeSender:
        self.sender_requests.append(queue_name)
        if self.failure is not None:
            raise self.failure
        return self.sender


@pytest.fixture
def client() -> FakeClient:
    return FakeClient()


@pytest.fixture
def queue(client: FakeClient) -> ServiceBusJobQueue:
    return ServiceBusJobQueue(client, QUEUE, now=lambda: T0)  # type: ignore[arg-type]  # a fake ServiceBusClient, on purpose


def sent_one(client: FakeClient) -> ServiceBusMessage:
    assert [kind for kind, _ in client.sender.sends] == ["message"]
    return client.sender.messages[0]


# ---------------------------------------------------------------------------------------------
# What is sent
# ---------------------------------------------------------------------------------------------


def test_a_first_copy_job_goes_out_with_its_deterministic_id_type_schema_and_kind(
    client: FakeClient, queue: ServiceBusJobQueue
) -> None:
    job = copy_job()

    queue.send(job)

    message = sent_one(client)
    assert message.message_id == job.message_id == f"copy:{'0' * 32}:start:0"
    assert message.content_type == CONTENT_TYPE == "application/json"
    assert dict(message.application_properties or {}) == {"schema": JOB_SCHEMA, "kind": "copy"}
    assert JOB_SCHEMA == 1
    assert message.subject == "copy"
    assert parse_job(body_of(message)) == job
    assert message.scheduled_enqueue_time_utc is None  # a first job is due at once, not scheduled


def test_a_resend_of_the_same_job_carries_the_same_message_id(
    client: FakeClient, queue: ServiceBusJobQueue
) -> None:
    job = copy_job()

    queue.send(job)
    queue.send(copy_job())  # equal job, built anew (as a retried HTTP request would)

    first, second = client.sender.messages
    # The adapter sends both: dropping the resend is the queue's duplicate detection's job.
    assert first.message_id == second.message_id == job.message_id
    assert body_of(first) == body_of(second)


def test_continuations_retries_and_requeues_each_have_their_own_message_id(queue: ServiceBusJobQueue) -> None:
    jobs = [
        copy_job("start", 0),
        copy_job("continue", 1),
        copy_job("continue", 2),
        copy_job("retry", 0),
        copy_job("retry", 1),
        copy_job("requeue", 1_735_732_800),
        copy_job("start", 0, registration_id="1" * 32),  # a re-registration: a new registration id
    ]

    ids = [to_message(job, 0, T0).message_id for job in jobs]

    assert ids == [job.message_id for job in jobs]
    assert len(set(ids)) == len(ids)
    assert all(i is not None and len(i) <= 128 for i in ids)  # Service Bus's limit on a message id


@pytest.mark.parametrize(
    ("purpose", "delay", "expected"),
    [
        ("continue", 0, T0),
        ("continue", 15, T0 + timedelta(seconds=15)),
        ("retry", 271.5, T0 + timedelta(seconds=271.5)),
        ("start", 30, T0 + timedelta(seconds=30)),  # any delay is a schedule
    ],
)
def test_continuations_retries_and_delayed_jobs_are_scheduled_messages(
    client: FakeClient, queue: ServiceBusJobQueue, purpose: str, delay: float, expected: datetime
) -> None:
    queue.send(copy_job(purpose, 1), delay_seconds=delay)

    message = sent_one(client)
    assert message.scheduled_enqueue_time_utc == expected
    assert message.message_id == copy_job(purpose, 1).message_id  # scheduling keeps the id


@pytest.mark.parametrize("purpose", ["start", "requeue"])
def test_a_job_without_delay_that_is_no_continuation_is_not_scheduled(
    client: FakeClient, queue: ServiceBusJobQueue, purpose: str
) -> None:
    queue.send(copy_job(purpose, 0))

    assert sent_one(client).scheduled_enqueue_time_utc is None


def test_the_schedule_follows_the_injected_clock(client: FakeClient) -> None:
    moments = iter([T0, T0 + timedelta(hours=1)])
    queue = ServiceBusJobQueue(client, QUEUE, now=lambda: next(moments))  # type: ignore[arg-type]  # a fake ServiceBusClient, on purpose

    queue.send(copy_job("continue", 1), delay_seconds=5)
    queue.send(copy_job("continue", 2), delay_seconds=5)

    first, second = client.sender.messages
    assert first.scheduled_enqueue_time_utc == T0 + timedelta(seconds=5)
    assert second.scheduled_enqueue_time_utc == T0 + timedelta(hours=1, seconds=5)


def test_a_bulk_registration_goes_out_with_its_kind_and_an_id_tied_to_its_body(
    client: FakeClient, queue: ServiceBusJobQueue
) -> None:
    job = RegisterJob("bulk-owner", "codegen", "1.0", registration_body(), owner_name="Bulk Owner")

    queue.send(job)
    queue.send(RegisterJob("bulk-owner", "codegen", "1.0", registration_body(), owner_name="Bulk Owner"))
    changed = registration_body(model_config={"type": "ENCODER", "description": "changed"})
    queue.send(RegisterJob("bulk-owner", "codegen", "1.0", changed, owner_name="Bulk Owner"))

    first, resent, other = client.sender.messages
    assert first.message_id == resent.message_id == job.message_id
    assert other.message_id != first.message_id  # a different body is a different registration request
    assert dict(first.application_properties or {}) == {"schema": JOB_SCHEMA, "kind": "register"}
    assert first.subject == "register"
    assert first.content_type == "application/json"
    assert first.scheduled_enqueue_time_utc is None
    assert parse_job(body_of(first)) == job


# ---------------------------------------------------------------------------------------------
# Batches
# ---------------------------------------------------------------------------------------------


def jobs_for(count: int) -> list[Job]:
    return [copy_job(registration_id=f"{i:032x}") for i in range(count)]


def fits(messages: Iterable[ServiceBusMessage], limit: int) -> bool:
    batch = ServiceBusMessageBatch(max_size_in_bytes=limit)
    try:
        for message in messages:
            batch.add_message(message)
    except MessageSizeExceededError:
        return False
    return True


def test_send_batch_packs_jobs_into_as_few_batches_as_the_size_limit_allows_in_order(
    client: FakeClient, queue: ServiceBusJobQueue
) -> None:
    jobs = jobs_for(50)

    queue.send_batch(jobs)

    sends = client.sender.sends
    assert {kind for kind, _ in sends} == {"batch"}
    assert 1 < len(sends) < 50  # the limit forces several batches, each of several messages
    assert [m.message_id for m in client.sender.messages] == [j.message_id for j in jobs]
    # Greedy packing is the fewest batches for messages kept in order: every batch but the last
    # was full, i.e. it could not have taken the next message too.
    for (_, batch), (_, following) in itertools.pairwise(sends):
        assert fits(batch, SMALL_BATCH)
        assert not fits([*batch, following[0]], SMALL_BATCH)
    for message, job in zip(client.sender.messages, jobs, strict=True):
        assert message.content_type == "application/json"
        assert dict(message.application_properties or {}) == {"schema": JOB_SCHEMA, "kind": "copy"}
        assert message.scheduled_enqueue_time_utc is None
        assert parse_job(body_of(message)) == job


def test_send_batch_sends_jobs_that_fit_in_one_batch_in_one_call(
    client: FakeClient, queue: ServiceBusJobQueue
) -> None:
    jobs = jobs_for(3)

    queue.send_batch(jobs)

    assert [(kind, [m.message_id for m in sent]) for kind, sent in client.sender.sends] == [
        ("batch", [j.message_id for j in jobs])
    ]


def test_send_batch_of_nothing_sends_nothing(client: FakeClient, queue: ServiceBusJobQueue) -> None:
    queue.send_batch([])

    assert client.sender.sends == []


def test_send_batch_mixes_bulk_registrations_and_copy_jobs(
    client: FakeClient, queue: ServiceBusJobQueue
) -> None:
    jobs: list[Job] = [
        RegisterJob("bulk-owner", f"model{i}", "1.0", registration_body(), owner_name="Bulk Owner")
        for i in range(6)
    ]
    jobs.append(copy_job())

    queue.send_batch(jobs)

    assert [parse_job(body_of(m)) for m in client.sender.messages] == jobs
    assert [m.subject for m in client.sender.messages] == ["register"] * 6 + ["copy"]


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------


SDK_ERRORS = [
    ServiceBusConnectionError(message="the connection dropped"),
    OperationTimeoutError(message="timed out"),
    ServiceBusServerBusyError(message="server busy"),
    ServiceBusError("something else"),
]


@pytest.mark.parametrize("error", SDK_ERRORS, ids=lambda e: type(e).__name__)
def test_a_service_bus_error_on_send_becomes_storage_unavailable(
    client: FakeClient, queue: ServiceBusJobQueue, error: ServiceBusError
) -> None:
    client.sender.failure = error

    with pytest.raises(StorageUnavailable, match=type(error).__name__) as raised:
        queue.send(copy_job())

    assert raised.value.__cause__ is error


@pytest.mark.parametrize("error", SDK_ERRORS, ids=lambda e: type(e).__name__)
def test_a_service_bus_error_on_send_batch_becomes_storage_unavailable(
    client: FakeClient, queue: ServiceBusJobQueue, error: ServiceBusError
) -> None:
    client.sender.failure = error

    with pytest.raises(StorageUnavailable) as raised:
        queue.send_batch(jobs_for(5))

    assert raised.value.__cause__ is error


def test_a_failure_to_open_the_sender_becomes_storage_unavailable_and_is_retried_on_the_next_send(
    client: FakeClient, queue: ServiceBusJobQueue
) -> None:
    client.failure = ServiceBusConnectionError(message="no route to the namespace")

    with pytest.raises(StorageUnavailable):
        queue.send(copy_job())
    client.failure = None
    queue.send(copy_job())

    assert client.sender_requests == [QUEUE, QUEUE]
    assert len(client.sender.messages) == 1


def test_errors_that_are_not_the_sdks_pass_through(client: FakeClient, queue: ServiceBusJobQueue) -> None:
    client.sender.failure = RuntimeError("a bug, not an outage")

    with pytest.raises(RuntimeError, match="a bug"):
        queue.send(copy_job())


# ---------------------------------------------------------------------------------------------
# One sender, one caller at a time
# ---------------------------------------------------------------------------------------------


def test_one_sender_is_opened_for_the_queue_and_reused(client: FakeClient, queue: ServiceBusJobQueue) -> None:
    queue.send(copy_job())
    queue.send_batch(jobs_for(3))
    queue.send(copy_job("continue", 1))

    assert client.sender_requests == [QUEUE]


def test_close_closes_the_sender_and_a_later_send_opens_a_new_one(
    client: FakeClient, queue: ServiceBusJobQueue
) -> None:
    queue.send(copy_job())
    queue.close()
    queue.close()  # closing twice is harmless

    assert client.sender.closed
    queue.send(copy_job())
    assert client.sender_requests == [QUEUE, QUEUE]


def test_concurrent_callers_share_one_sender_and_never_use_it_at_the_same_time(client: FakeClient) -> None:
    client.sender.pause = 0.001
    queue = ServiceBusJobQueue(client, QUEUE, now=lambda: T0)  # type: ignore[arg-type]  # a fake ServiceBusClient, on purpose
    threads, per_thread = 8, 10
    start = threading.Barrier(threads)
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            start.wait()
            for i in range(per_thread):
                if i % 3 == 2:
                    queue.send_batch(jobs_for(2))
                else:
                    queue.send(copy_job("continue", n * 100 + i, registration_id=uuid.uuid4().hex))
        except BaseException as error:  # reported below
            errors.append(error)

    workers = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=30)

    assert errors == []
    assert client.sender_requests == [QUEUE]  # one sender, even when the first sends race
    assert client.sender.most_inside == 1
    batches_per_thread = per_thread // 3
    assert len(client.sender.messages) == threads * (per_thread + batches_per_thread)


# ---------------------------------------------------------------------------------------------
# Limits of Service Bus: 128-character message ids, the namespace's message size
# ---------------------------------------------------------------------------------------------


def test_a_bulk_registration_with_long_valid_identifiers_gets_a_message_id_service_bus_accepts(
    client: FakeClient, queue: ServiceBusJobQueue
) -> None:
    owner = "0b5c3a8e-6f1d-4d57-9a43-2f8e5b7c1d90"  # an Entra object id, as the HTTP path uses
    longest = RegisterJob("o" * 128, "n" * 128, "v" * 128, registration_body())
    job = RegisterJob(owner, "codegen-" + "x" * 42, "2025.01.01-rc1", registration_body())

    queue.send(job)
    queue.send(longest)

    first, second = client.sender.messages
    assert (first.message_id, second.message_id) == (job.message_id, longest.message_id)
    assert first.message_id is not None and len(first.message_id) <= 128
    assert second.message_id is not None and len(second.message_id) <= 128
    # Still tied to owner, name and version as well as the body.
    other_version = RegisterJob(owner, "codegen-" + "x" * 42, "2025.01.02", registration_body())
    assert other_version.message_id != job.message_id


def test_a_job_too_large_for_any_batch_is_reported_as_permanent_not_as_a_passing_outage(
    client: FakeClient, queue: ServiceBusJobQueue
) -> None:
    huge = registration_body(model_config={"type": "DECODER", "description": "x" * (2 * SMALL_BATCH)})
    jobs: list[Job] = [copy_job(), RegisterJob("bulk-owner", "huge", "1.0", huge)]

    with pytest.raises(MessageTooLarge) as raised:
        queue.send_batch(jobs)

    assert isinstance(raised.value, ValueError)
    assert not isinstance(raised.value, StorageUnavailable)
    assert isinstance(raised.value.__cause__, MessageSizeExceededError)


def test_a_single_job_too_large_to_send_is_reported_as_permanent(
    client: FakeClient, queue: ServiceBusJobQueue
) -> None:
    huge = registration_body(model_config={"type": "DECODER", "description": "x" * (2 * SMALL_BATCH)})

    with pytest.raises(MessageTooLarge):
        queue.send(RegisterJob("bulk-owner", "huge", "1.0", huge))

    assert client.sender.sends == []
