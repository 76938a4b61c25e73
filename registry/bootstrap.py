"""Composition root: builds the services' dependencies from the settings, once per process.

`build(settings, **overrides)` wires the Azure adapters for every port not overridden, so tests
hand in fakes for some or all of them (and no Azure client is made for those).
"""

from __future__ import annotations

import logging
from dataclasses import fields
from functools import cache
from typing import Any

import requests
from azure.core.pipeline.transport import RequestsTransport
from azure.data.tables import TableServiceClient
from azure.eventgrid import EventGridPublisherClient
from azure.identity import DefaultAzureCredential
from azure.servicebus import ServiceBusClient
from azure.storage.blob import BlobServiceClient
from azure.storage.queue import QueueClient, TextBase64EncodePolicy
from requests.adapters import HTTPAdapter

from registry.adapters.blobs import AzureBlobCopier, AzureModelFiles
from registry.adapters.eventgrid import EventGridSink
from registry.adapters.queues import StorageJobQueue
from registry.adapters.servicebus import ServiceBusJobQueue
from registry.adapters.tables import TableNames, TableRegistrationStore
from registry.adapters.webhook_http import PinnedWebhookClient
from registry.adapters.webhook_tables import TableWebhookStore
from registry.digests import resumable_available
from registry.domain.model import utcnow
from registry.ports import EventSink
from registry.sealing import Sealer
from registry.services.dependencies import Dependencies
from registry.services.limits import Admission
from registry.services.webhook_delivery import WebhookFanout
from registry.settings import Settings, current_settings
from registry.signing.model_signer import model_signer_from_settings

_STORAGE_PORTS = ("store", "copier", "files", "webhooks")
# Responses are read in blocks of this size. The storage SDKs give the transports they make
# 256 KiB; a transport handed to them keeps azure-core's 4 KiB, which cost the worker's read back
# of its copies (8 MiB at a time, to hash them) a third of its throughput (bench: hash_throughput).
STORAGE_DATA_BLOCK_SIZE = 256 * 1024

log = logging.getLogger(__name__)


def shared_transport(pool_size: int = 64) -> RequestsTransport:
    """One HTTP session for every storage client: connections are reused across clients and
    threads (the default pool of 10 churns under concurrent requests), and no proxy settings
    are looked up from the environment on each call."""
    session = requests.Session()
    session.trust_env = False  # azure-core's use_env_settings=False covers only sessions it creates
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return RequestsTransport(
        session=session,
        session_owner=False,
        use_env_settings=False,
        connection_data_block_size=STORAGE_DATA_BLOCK_SIZE,
    )


def build(settings: Settings, **overrides: Any) -> Dependencies:
    """The dependencies for these settings; keyword arguments replace ports (store, queue,
    copier, files, webhooks, webhook_client), the sealer, the admission control, the event sinks
    or the clock (now)."""
    known = {f.name for f in fields(Dependencies)} - {"settings"}
    unknown = set(overrides) - known
    if unknown:
        raise TypeError(f"build() got unknown overrides: {', '.join(sorted(unknown))}")
    parts: dict[str, Any] = dict(overrides)
    transport = shared_transport()
    if not all(port in parts for port in _STORAGE_PORTS):
        parts = {**_storage_adapters(settings, transport), **parts}
    if "queue" not in parts:
        parts["queue"] = _job_queue(settings, transport)
    parts.setdefault("sealer", Sealer(settings.sealing_key, settings.sealing_previous_keys))
    parts.setdefault("admission", Admission(settings.quotas.rate_limits))
    if "signer" not in parts:
        parts["signer"] = model_signer_from_settings(settings)
    parts.setdefault("webhook_client", PinnedWebhookClient(dev_mode=settings.dev_mode))
    if "event_sinks" not in parts:
        # Event Grid (when configured) and the webhook fan-out: every event goes to each.
        webhooks = WebhookFanout(parts["webhooks"], parts["queue"], parts.get("now", utcnow))
        parts["event_sinks"] = (*_event_sinks(settings), webhooks)
    if not resumable_available():
        log.warning(
            "this libcrypto has no SHA256_Init/Update/Final: a file's hash cannot be saved half-way, "
            "so each file is hashed in one pass, past the copy's time budget if need be"
        )
    return Dependencies(settings=settings, **parts)


def _event_sinks(settings: Settings) -> tuple[EventSink, ...]:
    sinks: list[EventSink] = []
    if settings.event_grid_endpoint:
        # The app's one identity, which holds EventGrid Data Sender on the topic (infra/main.bicep).
        publisher = EventGridPublisherClient(
            settings.event_grid_endpoint, _credential(settings.storage_client_id)
        )
        sinks.append(EventGridSink(publisher, settings.base_url))
    return tuple(sinks)


def _storage_adapters(settings: Settings, transport: RequestsTransport) -> dict[str, Any]:
    if settings.storage_connection_string:
        conn = settings.storage_connection_string
        tables = TableServiceClient.from_connection_string(conn, transport=transport)
        blobs = BlobServiceClient.from_connection_string(conn, transport=transport)
    else:
        credential = _credential(settings.storage_client_id)
        account = settings.storage_account_name
        tables = TableServiceClient(
            f"https://{account}.table.core.windows.net", credential=credential, transport=transport
        )
        blobs = BlobServiceClient(
            f"https://{account}.blob.core.windows.net", credential=credential, transport=transport
        )
    container = blobs.get_container_client(settings.models_container)
    names = TableNames(
        settings.registrations_table,
        settings.files_table,
        settings.catalog_table,
        settings.changes_table,
        settings.manifests_table,
    )
    store = TableRegistrationStore(names, tables)
    webhooks = TableWebhookStore(tables, settings.webhooks_table, settings.webhook_deliveries_table)
    copier = AzureBlobCopier(container, transport)
    if settings.storage_connection_string:
        # Locally the emulator starts empty; in Azure the infrastructure creates these.
        store.ensure_tables()
        webhooks.ensure_tables()
        copier.ensure_container()
    return {
        "store": store,
        "copier": copier,
        "files": AzureModelFiles(container, blobs),
        "webhooks": webhooks,
    }


def _job_queue(settings: Settings, transport: RequestsTransport) -> StorageJobQueue | ServiceBusJobQueue:
    if settings.job_queue_kind == "servicebus":
        return ServiceBusJobQueue(_service_bus_client(settings), settings.service_bus_queue)
    encoding = TextBase64EncodePolicy()  # what the Functions queue trigger expects
    if settings.storage_connection_string:
        client = QueueClient.from_connection_string(
            settings.storage_connection_string,
            settings.jobs_queue,
            message_encode_policy=encoding,
            transport=transport,
        )
    else:
        client = QueueClient(
            f"https://{settings.storage_account_name}.queue.core.windows.net",
            settings.jobs_queue,
            credential=_credential(settings.storage_client_id),
            message_encode_policy=encoding,
            transport=transport,
        )
    queue = StorageJobQueue(client)
    if settings.storage_connection_string:
        queue.ensure_queue()
    return queue


def _credential(client_id: str | None) -> DefaultAzureCredential:
    return DefaultAzureCredential(managed_identity_client_id=client_id)


def _service_bus_client(settings: Settings) -> ServiceBusClient:
    if settings.service_bus_connection_string:
        return ServiceBusClient.from_connection_string(settings.service_bus_connection_string)
    return ServiceBusClient(str(settings.service_bus_namespace), _credential(settings.service_bus_client_id))


@cache
def dependencies() -> Dependencies:
    return build(current_settings())
