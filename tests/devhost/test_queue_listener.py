"""Queue listener behaviour against an in-memory stand-in for QueueClient."""

from __future__ import annotations

import base64
import itertools
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.queue import QueueMessage

from devhost.hostjson import QueueOptions
from devhost.invocation import FunctionDef, Invoker
from devhost.queues import (
    EMULATOR_CONNECTION_STRING,
    ConnectionNotFoundError,
    QueueListener,
    client_factory,
    decode_body,
    next_poll_delay,
)

_receipts = itertools.count(1)


@dataclass
class _Stored:
    id: str
    content: str
    dequeue_count: int = 0
    visible_at: float = 0.0
    pop_receipt: str = ""


@dataclass
class FakeStorage:
    queues: dict[str, dict[str, _Stored]] = field(default_factory=dict)
    updates: list[tuple[str, int]] = field(default_factory=list)
    receive_failures: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def client(self, name: str) -> FakeQueueClient:
        return FakeQueueClient(self, name)

    def send(self, name: str, content: str) -> None:
        self.queues.setdefault(name, {})
        FakeQueueClient(self, name).send_message(content)


class _Pages:
    def __init__(self, batch: list[QueueMessage]) -> None:
        self._batch = batch

    def by_page(self) -> Iterator[list[QueueMessage]]:
        return iter([self._batch])


class FakeQueueClient:
    def __init__(self, storage: FakeStorage, name: str) -> None:
        self.storage = storage
        self.name = name

    def _queue(self) -> dict[str, _Stored]:
        if self.name not in self.storage.queues:
            raise ResourceNotFoundError("no such queue")
        return self.storage.queues[self.name]

    def create_queue(self) -> None:
        with self.storage.lock:
            if self.name in self.storage.queues:
                raise ResourceExistsError("exists")
            self.storage.queues[self.name] = {}

    def send_message(self, content: str) -> None:
        with self.storage.lock:
            message_id = f"m{next(_receipts)}"
            self._queue()[message_id] = _Stored(message_id, content)

    def receive_messages(self, *, messages_per_page: int, visibility_timeout: int) -> _Pages:
        with self.storage.lock:
            if self.storage.receive_failures:
                self.storage.receive_failures -= 1
                raise ConnectionError("storage unavailable")
            now = time.monotonic()
            batch: list[QueueMessage] = []
            for stored in list(self._queue().values()):
                if len(batch) == messages_per_page:
                    break
                if stored.visible_at <= now:
                    stored.dequeue_count += 1
                    stored.visible_at = now + visibility_timeout
                    stored.pop_receipt = f"r{next(_receipts)}"
                    batch.append(
                        QueueMessage(
                            content=stored.content,
                            id=stored.id,
                            dequeue_count=stored.dequeue_count,
                            pop_receipt=stored.pop_receipt,
                        )
                    )
            return _Pages(batch)

    def _check(self, message_id: str, pop_receipt: str | None) -> _Stored:
        stored = self._queue()[message_id]
        assert stored.pop_receipt == pop_receipt, "stale pop receipt"
        return stored

    def update_message(
        self, message_id: str, pop_receipt: str | None, *, visibility_timeout: int
    ) -> QueueMessage:
        with self.storage.lock:
            stored = self._check(message_id, pop_receipt)
            stored.visible_at = time.monotonic() + visibility_timeout
            stored.pop_receipt = f"r{next(_receipts)}"
            self.storage.updates.append((message_id, visibility_timeout))
            return QueueMessage(id=message_id, pop_receipt=stored.pop_receipt)

    def delete_message(self, message_id: str, pop_receipt: str | None) -> None:
        with self.storage.lock:
            self._check(message_id, pop_receipt)
            del self._queue()[message_id]


OPTIONS = QueueOptions(
    batch_size=4,
    new_batch_threshold=2,
    max_dequeue_count=2,
    visibility_timeout=timedelta(0),
    max_polling_interval=timedelta(milliseconds=200),
)


def _wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.02)


@pytest.fixture
def storage() -> FakeStorage:
    return FakeStorage(queues={"work": {}})


def _listen(
    storage: FakeStorage, handler: Callable[[Any], None], options: QueueOptions = OPTIONS, lease: int = 30
) -> QueueListener:
    function = FunctionDef.create("handler", handler, "msg", ".")
    listener = QueueListener(function, "work", storage.client, options, Invoker(), lease)  # type: ignore[arg-type]  # fake QueueClients, on purpose
    listener.start()
    return listener


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_success_deletes_the_message(storage: FakeStorage) -> None:
    seen: list[tuple[bytes, int | None]] = []
    storage.send("work", _b64("hello"))
    listener = _listen(storage, lambda msg: seen.append((msg.get_body(), msg.dequeue_count)))
    try:
        _wait_for(lambda: not storage.queues["work"])
    finally:
        listener.stop()
    assert seen == [(b"hello", 1)]


def test_failures_end_in_the_poison_queue(storage: FakeStorage) -> None:
    counts: list[int | None] = []

    def fail(msg: Any) -> None:
        counts.append(msg.dequeue_count)
        raise RuntimeError("nope")

    storage.send("work", _b64("bad"))
    listener = _listen(storage, fail)
    try:
        _wait_for(lambda: bool(storage.queues.get("work-poison")))
    finally:
        listener.stop()
    assert counts == [1, 2]
    assert not storage.queues["work"]
    [poisoned] = storage.queues["work-poison"].values()
    assert poisoned.content == _b64("bad")  # copied as received, still base64
    # The first failure released the message with visibilityTimeout 0.
    assert storage.updates[0][1] == 0


def test_lease_is_renewed_while_the_function_runs(storage: FakeStorage) -> None:
    storage.send("work", _b64("slow"))
    listener = _listen(storage, lambda msg: time.sleep(1.3), lease=1)
    try:
        _wait_for(lambda: not storage.queues["work"])
    finally:
        listener.stop()
    # Renewed every 0.5 s with the lease as visibility; the delete used the latest receipt.
    assert len(storage.updates) >= 2
    assert {timeout for _, timeout in storage.updates} == {1}


def test_concurrency_is_bounded(storage: FakeStorage) -> None:
    running, peak = 0, 0
    lock = threading.Lock()

    def work(msg: Any) -> None:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.1)
        with lock:
            running -= 1

    for i in range(10):
        storage.send("work", _b64(str(i)))
    options = QueueOptions(
        batch_size=2, new_batch_threshold=0, max_polling_interval=timedelta(milliseconds=100)
    )
    listener = _listen(storage, work, options)
    try:
        _wait_for(lambda: not storage.queues["work"])
    finally:
        listener.stop()
    assert peak == 2


def test_message_encoding_none_and_missing_queue_is_created() -> None:
    storage = FakeStorage()
    seen: list[bytes] = []
    options = QueueOptions(message_encoding="none", max_polling_interval=timedelta(milliseconds=100))
    listener = _listen(storage, lambda msg: seen.append(msg.get_body()), options)
    try:
        _wait_for(lambda: "work" in storage.queues)
        storage.send("work", "plain text")
        _wait_for(lambda: seen == [b"plain text"])
    finally:
        listener.stop()


def test_storage_errors_are_retried(storage: FakeStorage) -> None:
    storage.receive_failures = 3
    seen: list[bytes] = []
    storage.send("work", _b64("later"))
    listener = _listen(storage, lambda msg: seen.append(msg.get_body()))
    try:
        _wait_for(lambda: seen == [b"later"])
    finally:
        listener.stop()


def test_bad_base64_counts_as_a_failure(storage: FakeStorage) -> None:
    storage.send("work", "not base64!")
    listener = _listen(storage, lambda msg: None)
    try:
        _wait_for(lambda: bool(storage.queues.get("work-poison")))
    finally:
        listener.stop()


def test_stop_waits_for_in_flight_work(storage: FakeStorage) -> None:
    storage.send("work", _b64("x"))
    started = threading.Event()

    def slow(msg: Any) -> None:
        started.set()
        time.sleep(0.3)

    listener = _listen(storage, slow)
    started.wait(5)
    listener.stop()
    assert listener.wait_idle(5)
    assert not storage.queues["work"]


def test_next_poll_delay() -> None:
    maximum = timedelta(seconds=1)
    delays = [timedelta(0)]
    for _ in range(6):
        delays.append(next_poll_delay(delays[-1], maximum))
    assert [d.total_seconds() for d in delays[1:]] == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]


def test_decode_body() -> None:
    assert decode_body(_b64("hé"), "base64") == "hé".encode()
    assert decode_body("raw", "none") == b"raw"
    with pytest.raises(ValueError, match="base64"):
        decode_body("***", "base64")


def test_client_factory_lookups(monkeypatch: pytest.MonkeyPatch) -> None:
    conn = "DefaultEndpointsProtocol=http;AccountName=a;AccountKey=a2V5;QueueEndpoint=http://127.0.0.1:1/a;"
    assert client_factory("Custom", {"Custom": conn})("q").url.startswith("http://127.0.0.1:1/a/q")
    assert client_factory("Custom", {"AzureWebJobsCustom": conn})("q").queue_name == "q"
    assert client_factory(None, {"AzureWebJobsStorage": conn})("q").queue_name == "q"
    dev = client_factory(None, {"AzureWebJobsStorage": "UseDevelopmentStorage=true"})("q")
    assert dev.url.startswith("http://127.0.0.1:10001/devstoreaccount1/q")
    assert "devstoreaccount1" in EMULATOR_CONNECTION_STRING
    with pytest.raises(ConnectionNotFoundError):
        client_factory("Missing", {})
