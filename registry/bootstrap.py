"""Composition root: builds the adapters from the settings, once per process."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import requests
from azure.core.pipeline.transport import RequestsTransport
from azure.data.tables import TableServiceClient
from azure.servicebus import ServiceBusClient
from azure.storage.blob import BlobServiceClient
from azure.storage.queue import QueueClient, TextBase64EncodePolicy
from requests.adapters import HTTPAdapter

from registry.adapters.blobs import AzureBlobCopier
from registry.adapters.queues import StorageJobQueue
from registry.adapters.servicebus import ServiceBusJobQueue
from registry.adapters.tables import TableRegistrationStore
from registry.sealing import Sealer
from registry.services.copying import CopyPolicy
from registry.services.jobs import handle_message
from registry.settings import Settings, current_settings


@dataclass(frozen=True)
class Dependencies:
    settings: Settings
    store: TableRegistrationStore
    queue: StorageJobQueue | ServiceBusJobQueue
    copier: AzureBlobCopier
    sealer: Sealer

    def handle_job(self, body: bytes, *, redelivered: bool) -> str:
        """One job message, whichever queue trigger delivered it."""
        return handle_message(
            body,
            store=self.store,
            queue=self.queue,
            copier=self.copier,
            sealer=self.sealer,
            settings=self.settings,
            policy=self.copy_policy,
            redelivered=redelivered,
        )

    @property
    def copy_policy(self) -> CopyPolicy:
        s = self.settings
        return CopyPolicy(
            s.copy_block_size, s.copy_concurrency, s.copy_time_budget_seconds, s.copy_lease_seconds
        )


def shared_transport(pool_size: int = 64) -> RequestsTransport:
    """One HTTP session for every storage client: connections are reused across clients and
    threads (the default pool of 10 churns under concurrent requests), and no proxy settings
    are looked up from the environment on each call."""
    session = requests.Session()
    session.trust_env = False  # azure-core's use_env_settings=False covers only sessions it creates
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return RequestsTransport(session=session, session_owner=False, use_env_settings=False)


def build(settings: Settings) -> Dependencies:
    transport = shared_transport()
    if settings.storage_connection_string:
        conn = settings.storage_connection_string
        tables = TableServiceClient.from_connection_string(conn, transport=transport)
        blobs = BlobServiceClient.from_connection_string(conn, transport=transport)
        queue = QueueClient.from_connection_string(
            conn, settings.jobs_queue, message_encode_policy=TextBase64EncodePolicy(), transport=transport
        )
    else:
        from azure.identity import DefaultAzureCredential

        credential = DefaultAzureCredential(managed_identity_client_id=settings.storage_client_id)
        account = settings.storage_account_name
        tables = TableServiceClient(
            f"https://{account}.table.core.windows.net", credential=credential, transport=transport
        )
        blobs = BlobServiceClient(
            f"https://{account}.blob.core.windows.net", credential=credential, transport=transport
        )
        queue = QueueClient(
            f"https://{account}.queue.core.windows.net",
            settings.jobs_queue,
            credential=credential,
            message_encode_policy=TextBase64EncodePolicy(),
            transport=transport,
        )
    jobs: StorageJobQueue | ServiceBusJobQueue = StorageJobQueue(queue)
    if settings.job_queue_kind == "servicebus":
        jobs = ServiceBusJobQueue(_service_bus_client(settings), settings.service_bus_queue)
    deps = Dependencies(
        settings=settings,
        store=TableRegistrationStore.create(
            tables,
            settings.registrations_table,
            settings.files_table,
            settings.catalog_table,
            settings.changes_table,
        ),
        queue=jobs,
        copier=AzureBlobCopier(blobs.get_container_client(settings.models_container), blobs, transport),
        sealer=Sealer(settings.sealing_key),
    )
    if settings.storage_connection_string:
        # Locally the emulator starts empty; in Azure the infrastructure creates these.
        deps.store.ensure_tables()
        StorageJobQueue(queue).ensure_queue()
        deps.copier.ensure_container()
    return deps


def _service_bus_client(settings: Settings) -> ServiceBusClient:
    if settings.service_bus_connection_string:
        return ServiceBusClient.from_connection_string(settings.service_bus_connection_string)
    from azure.identity import DefaultAzureCredential

    credential = DefaultAzureCredential(managed_identity_client_id=settings.service_bus_client_id)
    return ServiceBusClient(str(settings.service_bus_namespace), credential)


@cache
def dependencies() -> Dependencies:
    return build(current_settings())
