"""JobQueue on Azure Service Bus: duplicate detection by message id, scheduled continuations."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta

from azure.servicebus import ServiceBusClient, ServiceBusMessage, ServiceBusSender
from azure.servicebus.exceptions import MessageSizeExceededError, ServiceBusError

from registry.domain.errors import StorageUnavailable
from registry.domain.jobs import JOB_SCHEMA, CopyJob, Job
from registry.domain.model import utcnow

CONTENT_TYPE = "application/json"
# Continuations and retries go out as scheduled messages (due now or after their delay).
_SCHEDULED_PURPOSES = frozenset({"continue", "retry"})


def to_message(job: Job, delay_seconds: float, now: datetime) -> ServiceBusMessage:
    scheduled = isinstance(job, CopyJob) and job.purpose in _SCHEDULED_PURPOSES
    return ServiceBusMessage(
        job.to_json(),
        message_id=job.message_id,
        content_type=CONTENT_TYPE,
        subject=job.kind,
        application_properties={"schema": JOB_SCHEMA, "kind": job.kind},
        scheduled_enqueue_time_utc=now + timedelta(seconds=delay_seconds)
        if scheduled or delay_seconds
        else None,
    )


class MessageTooLarge(ValueError):
    """A job larger than the namespace takes: sending it again cannot help."""


@contextmanager
def _queue_errors() -> Iterator[None]:
    try:
        yield
    except MessageSizeExceededError as error:
        raise MessageTooLarge("the job message is larger than the Service Bus namespace accepts") from error
    except ServiceBusError as error:  # the SDK already retried with backoff
        raise StorageUnavailable(f"Service Bus: {type(error).__name__}") from error


class ServiceBusJobQueue:
    def __init__(self, client: ServiceBusClient, queue: str, now: Callable[[], datetime] = utcnow) -> None:
        self._client = client
        self._queue = queue
        self._now = now
        self._sender: ServiceBusSender | None = None
        self._lock = threading.Lock()  # a sender is not thread-safe; HTTP functions share this one

    def _get_sender(self) -> ServiceBusSender:
        if self._sender is None:
            self._sender = self._client.get_queue_sender(self._queue)
        return self._sender

    def send(self, job: Job, delay_seconds: float = 0) -> None:
        message = to_message(job, delay_seconds, self._now())
        with self._lock, _queue_errors():
            self._get_sender().send_messages(message)

    def send_batch(self, jobs: Sequence[Job]) -> None:
        """Send many jobs in as few batches as fit the namespace's message size limit."""
        now = self._now()
        with self._lock, _queue_errors():
            sender = self._get_sender()
            batch = sender.create_message_batch()
            for job in jobs:
                message = to_message(job, 0, now)
                try:
                    batch.add_message(message)
                except MessageSizeExceededError:
                    if not len(batch):
                        raise  # too large even alone
                    sender.send_messages(batch)
                    batch = sender.create_message_batch()
                    batch.add_message(message)
            if len(batch):
                sender.send_messages(batch)

    def close(self) -> None:
        with self._lock:
            if self._sender is not None:
                self._sender.close()
                self._sender = None
