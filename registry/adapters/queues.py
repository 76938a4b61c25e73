"""JobQueue on an Azure Storage queue, base64-encoded as the Functions queue trigger expects."""

from __future__ import annotations

import math
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from azure.storage.queue import QueueClient

from registry.adapters.errors import ignore_exists, storage_errors
from registry.domain.jobs import Job


class StorageJobQueue:
    def __init__(self, client: QueueClient) -> None:
        self._client = client

    def ensure_queue(self) -> None:
        with storage_errors():
            ignore_exists(self._client.create_queue)

    def send(self, job: Job, delay_seconds: float = 0) -> None:
        with storage_errors():
            self._client.send_message(job.to_json(), visibility_timeout=math.ceil(delay_seconds) or None)

    def send_batch(self, jobs: Sequence[Job]) -> None:
        """Storage queues take one message per call: send them a few at a time, in parallel."""
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(self.send, jobs))
