"""The Service Bus adapter against a real namespace or the official emulator.

Runs only when SERVICEBUS_CONNECTION_STRING (the emulator, or a namespace with SAS auth) or
SERVICEBUS_FULLY_QUALIFIED_NAMESPACE (a namespace reached with your Azure login through
DefaultAzureCredential, as the deployed one requires) is set; SERVICEBUS_QUEUE names the queue,
default registration-jobs. Skipped otherwise. See the README, "Service Bus".

The tests receive (and complete) every message on the queue before and after each test: point
them at a queue that no running app consumes. Every test uses fresh registration ids, so the
duplicate detection window of an earlier run never hides a message of this one.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from azure.servicebus import ServiceBusClient, ServiceBusReceivedMessage

from registry.adapters.servicebus import ServiceBusJobQueue
from registry.domain.jobs import JOB_SCHEMA, CopyJob, Job, RegisterJob, parse_job
from tests.builders import registration_body

CONNECTION = os.environ.get("SERVICEBUS_CONNECTION_STRING", "")
NAMESPACE = os.environ.get("SERVICEBUS_FULLY_QUALIFIED_NAMESPACE", "")
QUEUE = os.environ.get("SERVICEBUS_QUEUE", "") or "registration-jobs"
EMULATED = "usedevelopmentemulator=true" in CONNECTION.replace(" ", "").lower()

pytestmark = pytest.mark.skipif(
    not (CONNECTION or NAMESPACE),
    reason="live Service Bus tests: set SERVICEBUS_CONNECTION_STRING or SERVICEBUS_FULLY_QUALIFIED_NAMESPACE "
    "(and SERVICEBUS_QUEUE, default registration-jobs); see the README's Service Bus section",
)

# ---------------------------------------------------------------------------------------------
# Fixtures and helpers
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def client() -> Iterator[ServiceBusClient]:
    if CONNECTION:
        sb = ServiceBusClient.from_connection_string(CONNECTION)
    else:
        from azure.identity import DefaultAzureCredential

        sb = ServiceBusClient(NAMESPACE, DefaultAzureCredential())
    with sb:
        yield sb


@pytest.fixture
def queue(client: ServiceBusClient) -> Iterator[ServiceBusJobQueue]:
    drain(client)
    jobs = ServiceBusJobQueue(client, QUEUE)
    yield jobs
    jobs.close()
    drain(client)


def drain(client: ServiceBusClient) -> int:
    """Receive and complete whatever is on the queue now (scheduled messages are not there yet)."""
    drained = 0
    with client.get_queue_receiver(QUEUE) as receiver:
        while True:
            batch = receiver.receive_messages(max_message_count=100, max_wait_time=2)
            if not batch:
                return drained
            for message in batch:
                receiver.complete_message(message)
            drained += len(batch)


def receive(client: ServiceBusClient, *, expect: int, within: float) -> list[ServiceBusReceivedMessage]:
    """Receive (and complete) messages until `expect` arrived or `within` seconds passed."""
    received: list[ServiceBusReceivedMessage] = []
    deadline = time.monotonic() + within
    with client.get_queue_receiver(QUEUE) as receiver:
        while len(received) < expect and time.monotonic() < deadline:
            wait = max(1.0, min(5.0, deadline - time.monotonic()))
            for message in receiver.receive_messages(max_message_count=100, max_wait_time=wait):
                receiver.complete_message(message)
                received.append(message)
    return received


def body_of(message: ServiceBusReceivedMessage) -> bytes:
    body = message.body
    return body if isinstance(body, bytes) else b"".join(body)


def text(value: Any) -> Any:
    return value.decode() if isinstance(value, bytes) else value


def properties(message: ServiceBusReceivedMessage) -> dict[Any, Any]:
    return {text(k): text(v) for k, v in (message.application_properties or {}).items()}


def copy_job(purpose: str = "start", sequence: int = 0) -> CopyJob:
    return CopyJob("live-test-owner", "codegen", "1.0", uuid.uuid4().hex, purpose, sequence)


def duplicate_detection() -> tuple[bool | None, str]:
    """Whether the queue drops resends by message id, and how we know."""
    declared = os.environ.get("SERVICEBUS_DUPLICATE_DETECTION", "").strip().lower()
    if declared:
        return declared in ("1", "true", "yes", "on"), "SERVICEBUS_DUPLICATE_DETECTION"
    if EMULATED:
        # The Python admin client cannot reach the emulator's management port: trust the
        # servicebus-emulator/Config.json that declares the queue.
        return True, "servicebus-emulator/Config.json"
    try:
        from azure.servicebus.management import ServiceBusAdministrationClient

        if CONNECTION:
            admin = ServiceBusAdministrationClient.from_connection_string(CONNECTION)
        else:
            from azure.identity import DefaultAzureCredential

            admin = ServiceBusAdministrationClient(NAMESPACE, DefaultAzureCredential())
        with admin:
            found = admin.get_queue(QUEUE, retry_total=0, connection_timeout=10, read_timeout=10)
        return bool(found.requires_duplicate_detection), "the queue's properties"
    except Exception as error:  # any failure means we cannot tell
        return None, f"could not read the queue's properties ({type(error).__name__})"


# ---------------------------------------------------------------------------------------------
# Scenarios
# ---------------------------------------------------------------------------------------------


def test_a_job_arrives_with_its_message_id_content_type_and_properties(
    client: ServiceBusClient, queue: ServiceBusJobQueue
) -> None:
    job = copy_job()

    queue.send(job)

    [message] = receive(client, expect=1, within=30)
    assert message.message_id == job.message_id
    assert text(message.content_type) == "application/json"
    assert text(message.subject) == "copy"
    assert properties(message) == {"schema": JOB_SCHEMA, "kind": "copy"}
    assert parse_job(body_of(message)) == job


def test_a_bulk_registration_arrives_intact(client: ServiceBusClient, queue: ServiceBusJobQueue) -> None:
    job = RegisterJob("live-test-owner", f"model-{uuid.uuid4().hex[:8]}", "1.0", registration_body(), "Live")

    queue.send(job)

    [message] = receive(client, expect=1, within=30)
    assert message.message_id == job.message_id
    assert properties(message) == {"schema": JOB_SCHEMA, "kind": "register"}
    assert parse_job(body_of(message)) == job


def test_a_resend_of_the_same_job_within_the_duplicate_detection_window_is_dropped(
    client: ServiceBusClient, queue: ServiceBusJobQueue
) -> None:
    detects, source = duplicate_detection()
    if not detects:
        pytest.skip(
            f"queue {QUEUE!r} has no duplicate detection ({source}); "
            "set SERVICEBUS_DUPLICATE_DETECTION=true if it has"
        )
    job = copy_job()
    other = copy_job()

    queue.send(job)
    queue.send(job)  # a retried send, after an unknown outcome say
    queue.send_batch([job, other])

    received = receive(client, expect=3, within=20)  # waits the full 20 s unless a duplicate slips in
    assert sorted(str(m.message_id) for m in received) == sorted([job.message_id, other.message_id])


def test_a_continuation_is_scheduled_and_not_receivable_before_its_time(
    client: ServiceBusClient, queue: ServiceBusJobQueue
) -> None:
    delay = 15
    job = copy_job("continue", 1)
    sent_at = datetime.now(UTC)

    queue.send(job, delay_seconds=delay)

    assert receive(client, expect=1, within=5) == []
    [message] = receive(client, expect=1, within=delay + 45)
    assert message.message_id == job.message_id
    assert message.scheduled_enqueue_time_utc is not None
    due = sent_at + timedelta(seconds=delay)
    assert abs(message.scheduled_enqueue_time_utc - due) < timedelta(seconds=5)
    assert message.enqueued_time_utc is not None
    assert message.enqueued_time_utc >= due - timedelta(seconds=5)  # allowing for clock skew


def test_send_batch_of_fifty_jobs_delivers_them_all(
    client: ServiceBusClient, queue: ServiceBusJobQueue
) -> None:
    jobs: list[Job] = [copy_job() for _ in range(50)]

    queue.send_batch(jobs)

    received = receive(client, expect=50, within=60)
    assert sorted(str(m.message_id) for m in received) == sorted(j.message_id for j in jobs)
    assert sorted(body_of(m) for m in received) == sorted(j.to_json().encode() for j in jobs)
