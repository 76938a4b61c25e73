"""Source files in the model owner's (emulated) storage account, handed out as read-only SAS URLs."""

from __future__ import annotations

import base64
import hashlib
import os
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.storage.blob import (
    BlobBlock,
    BlobSasPermissions,
    BlobServiceClient,
    ContainerClient,
    ContainerSasPermissions,
    ContentSettings,
    generate_blob_sas,
    generate_container_sas,
)

from devhost.azurite import OWNER_ACCOUNT, Azurite

MIB = 1024 * 1024
UPLOAD_BLOCK = 8 * MIB


@dataclass(frozen=True)
class SourceFile:
    target: str
    url: str
    size: int
    md5: str  # base64, as Content-MD5


class OwnerContainer:
    """A container in the owner's account; big files are uploaded block by block, never held whole."""

    def __init__(self, azurite: Azurite, name: str) -> None:
        service = BlobServiceClient.from_connection_string(azurite.connection_string(OWNER_ACCOUNT))
        self.container: ContainerClient = service.get_container_client(name)
        if not self.container.exists():
            self.container.create_container()

    def blob_url(self, blob: str, expiry: timedelta = timedelta(hours=2)) -> str:
        sas = generate_blob_sas(
            OWNER_ACCOUNT[0],
            self.container.container_name,
            blob,
            account_key=OWNER_ACCOUNT[1],
            permission=BlobSasPermissions(read=True),
            expiry=datetime.now(UTC) + expiry,
        )
        return f"{self.container.url}/{blob}?{sas}"

    def container_sas(self, expiry: timedelta = timedelta(hours=2)) -> str:
        """One read SAS for the whole container (cheap to reuse in many URLs)."""
        return generate_container_sas(
            OWNER_ACCOUNT[0],
            self.container.container_name,
            account_key=OWNER_ACCOUNT[1],
            permission=ContainerSasPermissions(read=True),
            expiry=datetime.now(UTC) + expiry,
        )

    def upload_random(self, blob: str, size: int, parallel: int = 4) -> SourceFile:
        """`size` random bytes, staged in 8 MiB blocks (a few at a time, so never held whole)
        and committed with their Content-MD5."""
        client = self.container.get_blob_client(blob)
        digest = hashlib.md5()  # noqa: S324 - Content-MD5, an integrity check, not security
        blocks = []
        in_flight: deque[Future[Any]] = deque()
        with ThreadPoolExecutor(parallel, thread_name_prefix="upload") as pool:
            for index, offset in enumerate(range(0, size, UPLOAD_BLOCK)):
                data = os.urandom(min(UPLOAD_BLOCK, size - offset))
                digest.update(data)
                block_id = base64.b64encode(f"upload-{index:06d}".encode()).decode()
                if len(in_flight) >= parallel:
                    in_flight.popleft().result()
                in_flight.append(pool.submit(client.stage_block, block_id, data))
                blocks.append(BlobBlock(block_id))
            for future in in_flight:
                future.result()
        md5 = digest.digest()
        client.commit_block_list(blocks, content_settings=ContentSettings(content_md5=bytearray(md5)))
        return SourceFile(blob, self.blob_url(blob), size, base64.b64encode(md5).decode())

    def upload_bytes(self, blob: str, data: bytes) -> SourceFile:
        self.container.upload_blob(blob, data, overwrite=True)
        md5 = hashlib.md5(data).digest()  # noqa: S324 - Content-MD5
        return SourceFile(blob, self.blob_url(blob), len(data), base64.b64encode(md5).decode())


def md5_of_blob(container: ContainerClient, blob: str) -> str:
    """Download a blob chunk by chunk and hash it (base64 MD5)."""
    digest = hashlib.md5()  # noqa: S324 - comparing bytes, not security
    for chunk in container.download_blob(blob, max_concurrency=4).chunks():
        digest.update(chunk)
    return base64.b64encode(digest.digest()).decode()
