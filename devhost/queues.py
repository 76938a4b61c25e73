"""Queue triggers: poll Azure Storage queues like the Functions queue extension."""

from __future__ import annotations

import base64
import binascii
import contextlib
import logging
import threading
from collections.abc import Callable, Mapping
from datetime import timedelta

from azure.core.exceptions import ResourceExistsError
from azure.functions.queue import QueueMessage as FunctionQueueMessage
from azure.storage.queue import QueueClient, QueueMessage

from devhost.azurite import WELL_KNOWN_ACCOUNT_KEY
from devhost.hostjson import MIN_POLLING_INTERVAL, QueueOptions
from devhost.invocation import FunctionDef, Invoker

log = logging.getLogger("devhost.queues")

DEFAULT_CONNECTION = "AzureWebJobsStorage"
DEFAULT_LEASE_SECONDS = 30
EMULATOR_CONNECTION_STRING = (
    "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
    f"AccountKey={WELL_KNOWN_ACCOUNT_KEY};"
    "BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;"
    "QueueEndpoint=http://127.0.0.1:10001/devstoreaccount1;"
    "TableEndpoint=http://127.0.0.1:10002/devstoreaccount1;"
)

ClientFactory = Callable[[str], QueueClient]


class ConnectionNotFoundError(LookupError):
    pass


def client_factory(connection: str | None, env: Mapping[str, str]) -> ClientFactory:
    """Resolve a binding's ``connection`` setting to a QueueClient factory.

    Looks up ``<connection>`` then ``AzureWebJobs<connection>`` as a connection
    string, then identity-based settings (``<connection>__queueServiceUri``,
    ``__serviceUri`` or ``__accountName``) with DefaultAzureCredential.
    """
    name = connection or DEFAULT_CONNECTION
    for key in (name, f"AzureWebJobs{name}"):
        value = env.get(key, "").strip()
        if value:
            conn_str = EMULATOR_CONNECTION_STRING if _is_dev_storage(value) else value
            return lambda queue: QueueClient.from_connection_string(conn_str, queue)
    account_url = env.get(f"{name}__queueServiceUri") or env.get(f"{name}__serviceUri")
    account = env.get(f"{name}__accountName")
    if not account_url and account:
        account_url = f"https://{account}.queue.core.windows.net"
    if account_url:
        from azure.identity import DefaultAzureCredential  # only needed for identity connections

        credential = DefaultAzureCredential()
        url = account_url
        return lambda queue: QueueClient(url, queue, credential=credential)
    raise ConnectionNotFoundError(
        f"Storage connection '{name}' is not configured (set {name} in the environment)"
    )


def _is_dev_storage(value: str) -> bool:
    return value.replace(" ", "").lower().startswith("usedevelopmentstorage=true")


def decode_body(content: str, encoding: str) -> bytes:
    """Message text to body bytes, per host.json ``messageEncoding``."""
    if encoding == "none":
        return content.encode("utf-8")
    try:
        return base64.b64decode("".join(content.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("message is not valid base64 (host.json messageEncoding is base64)") from exc


def next_poll_delay(current: timedelta, maximum: timedelta) -> timedelta:
    """Exponential back-off after an empty poll, from 100 ms up to maxPollingInterval."""
    if current < MIN_POLLING_INTERVAL:
        return min(MIN_POLLING_INTERVAL, maximum)
    return min(current * 2, maximum)


def _ensure_queue(client: QueueClient) -> None:
    with contextlib.suppress(ResourceExistsError):
        client.create_queue()


class _LeaseRenewal:
    """Keeps an in-flight message invisible by renewing it every lease/2."""

    def __init__(self, client: QueueClient, message: QueueMessage, lease_seconds: int) -> None:
        self._client = client
        self._id: str = message.id
        self.pop_receipt: str | None = message.pop_receipt
        self._lease = lease_seconds
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"devhost-lease-{self._id}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._done.wait(self._lease / 2):
            try:
                updated = self._client.update_message(
                    self._id, self.pop_receipt, visibility_timeout=self._lease
                )
                self.pop_receipt = updated.pop_receipt
            except Exception as exc:
                log.warning("Could not renew the lease of message %s: %s", self._id, exc)

    def stop(self) -> str | None:
        """Stop renewing; returns the latest pop receipt."""
        self._done.set()
        self._thread.join()
        return self.pop_receipt


class QueueListener:
    """Poll loop for one queue trigger; each message runs on its own thread."""

    def __init__(
        self,
        function: FunctionDef,
        queue_name: str,
        make_client: ClientFactory,
        options: QueueOptions,
        invoker: Invoker,
        lease_seconds: int = DEFAULT_LEASE_SECONDS,
    ) -> None:
        self.function = function
        self.queue_name = queue_name
        self.poison_queue_name = f"{queue_name}-poison"
        self._make_client = make_client
        self._options = options
        self._invoker = invoker
        self._lease = max(lease_seconds, 1)
        self._client: QueueClient | None = None
        self._stop = threading.Event()
        self._state = threading.Condition()
        self._in_flight = 0
        self._thread = threading.Thread(target=self._run, name=f"devhost-queue-{queue_name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        with self._state:
            self._state.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        with self._state:
            return self._state.wait_for(lambda: self._in_flight == 0, timeout)

    def _queue(self) -> QueueClient:
        if self._client is None:
            client = self._make_client(self.queue_name)
            _ensure_queue(client)
            self._client = client
        return self._client

    def _run(self) -> None:
        options = self._options
        delay = timedelta(0)
        while not self._stop.is_set():
            # Like the host: fetch a new batch only once in-flight work drops to newBatchThreshold.
            with self._state:
                self._state.wait_for(
                    lambda: self._in_flight <= options.new_batch_threshold or self._stop.is_set()
                )
            if self._stop.is_set():
                break
            try:
                client = self._queue()
                pages = client.receive_messages(
                    messages_per_page=options.batch_size, visibility_timeout=self._lease
                ).by_page()
                messages = list(next(pages, []))
            except Exception as exc:
                delay = next_poll_delay(delay, options.max_polling_interval)
                log.warning("Polling queue '%s' failed, retrying in %s: %s", self.queue_name, delay, exc)
                self._stop.wait(delay.total_seconds())
                continue
            if messages:
                delay = timedelta(0)
                for message in messages:
                    self._dispatch(client, message)
                continue
            delay = next_poll_delay(delay, options.max_polling_interval)
            self._stop.wait(delay.total_seconds())

    def _dispatch(self, client: QueueClient, message: QueueMessage) -> None:
        with self._state:
            self._in_flight += 1
        thread = threading.Thread(
            target=self._process, args=(client, message), name=f"devhost-msg-{message.id}", daemon=True
        )
        thread.start()

    def _process(self, client: QueueClient, message: QueueMessage) -> None:
        try:
            with self._invoker.track():
                self._handle(client, message)
        except Exception:
            log.exception("Could not complete message %s from queue '%s'", message.id, self.queue_name)
        finally:
            with self._state:
                self._in_flight -= 1
                self._state.notify_all()

    def _handle(self, client: QueueClient, message: QueueMessage) -> None:
        max_count = self._options.max_dequeue_count
        dequeue_count = int(message.dequeue_count or 1)
        if dequeue_count > max_count:
            # Seen too often already (e.g. a host crashed mid-run): poison it unprocessed.
            self._poison(client, message, message.pop_receipt)
            return
        renewal = _LeaseRenewal(client, message, self._lease)
        succeeded = False
        try:
            succeeded = self._invoke(message, dequeue_count)
        finally:
            pop_receipt = renewal.stop()
        if succeeded:
            client.delete_message(message.id, pop_receipt)
        elif dequeue_count >= max_count:
            self._poison(client, message, pop_receipt)
        else:
            visibility = int(self._options.visibility_timeout.total_seconds())
            client.update_message(message.id, pop_receipt, visibility_timeout=visibility)

    def _invoke(self, message: QueueMessage, dequeue_count: int) -> bool:
        try:
            body = decode_body(message.content or "", self._options.message_encoding)
        except ValueError as exc:
            log.error("Message %s on queue '%s' could not be decoded: %s", message.id, self.queue_name, exc)
            return False
        # azure.functions.queue.QueueMessage is unannotated, hence the ignore.
        trigger_input = FunctionQueueMessage(  # type: ignore[no-untyped-call]
            id=message.id,
            body=body,
            dequeue_count=dequeue_count,
            expiration_time=message.expires_on,
            insertion_time=message.inserted_on,
            time_next_visible=message.next_visible_on,
            pop_receipt=message.pop_receipt,
        )
        try:
            self._invoker.invoke(
                self.function, trigger_input, f"New queue message detected on '{self.queue_name}'."
            )
        except Exception:
            return False  # the invoker logged the traceback
        return True

    def _poison(self, client: QueueClient, message: QueueMessage, pop_receipt: str | None) -> None:
        log.warning(
            "Message %s has reached MaxDequeueCount of %d; moving it to queue '%s'.",
            message.id,
            self._options.max_dequeue_count,
            self.poison_queue_name,
        )
        poison = self._make_client(self.poison_queue_name)
        _ensure_queue(poison)
        # Copy the text as received, so the encoding is unchanged.
        poison.send_message(message.content)
        client.delete_message(message.id, pop_receipt)
