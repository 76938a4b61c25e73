"""The registry's private container on Azure Blob Storage: the copy's destination (BlobCopier)
and where readers find registered files (ModelFiles)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import AzureError, HttpResponseError, ResourceNotFoundError
from azure.core.pipeline.transport import HttpTransport
from azure.storage.blob import (
    BlobBlock,
    BlobClient,
    BlobSasPermissions,
    BlobServiceClient,
    ContainerClient,
    ContentSettings,
    UserDelegationKey,
    generate_blob_sas,
)

from registry.adapters.errors import ignore_exists, is_transient_status, storage_errors
from registry.domain.errors import NotFound, SourceError
from registry.domain.model import SourceInfo

_SOURCE_REASONS = {
    301: "the source answered with a redirect, which the registry does not follow",
    302: "the source answered with a redirect, which the registry does not follow",
    307: "the source answered with a redirect, which the registry does not follow",
    308: "the source answered with a redirect, which the registry does not follow",
    401: "the source refused access (401): its SAS is missing or invalid",
    403: "the source refused access (403): its SAS is missing, expired or lacks read permission",
    404: "the source does not exist (404)",
    409: "the source is not readable in its current state (409)",
    412: "the source changed during the copy (412)",
    416: "the source is shorter than when the copy started (416)",
}


def _source_error(error: AzureError) -> SourceError:
    """Classify a failure to read a source. Never quote the service's text: it may echo the URL."""
    status = error.status_code if isinstance(error, HttpResponseError) else None
    if is_transient_status(status):
        return SourceError(
            f"the source could not be reached ({status or type(error).__name__})", permanent=False
        )
    reason = _SOURCE_REASONS.get(status or 0, f"the source could not be read ({status})")
    return SourceError(reason, permanent=True)


class AzureBlobCopier:
    """Put Block From URL into the private container: the storage service moves the bytes."""

    def __init__(self, container: ContainerClient, transport: HttpTransport[Any, Any] | None = None) -> None:
        self._container = container
        self._transport = transport

    def ensure_container(self) -> None:
        with storage_errors():
            ignore_exists(self._container.create_container)

    def source_info(self, url: str) -> SourceInfo:
        # A source's host was checked when it was registered: a redirect must not lead elsewhere.
        options: dict[str, Any] = {"permit_redirects": False, "retry_total": 3}
        if self._transport is not None:
            options["transport"] = self._transport
        try:
            properties = BlobClient.from_blob_url(url, **options).get_blob_properties()
        except AzureError as error:
            raise _source_error(error) from None
        except ValueError:
            raise SourceError("the source URL is not a blob URL", permanent=True) from None
        md5 = properties.content_settings.content_md5
        return SourceInfo(
            size=int(properties.size),
            etag=str(properties.etag),
            content_md5=base64.b64encode(bytes(md5)).decode() if md5 else "",
        )

    def staged_blocks(self, path: str) -> dict[str, int]:
        try:
            with storage_errors():
                _, uncommitted = self._container.get_blob_client(path).get_block_list("uncommitted")
        except NotFound:
            return {}
        return {block.id: int(block.size) for block in uncommitted}

    def committed_size(self, path: str, block_ids: list[str]) -> int | None:
        try:
            with storage_errors():
                committed, _ = self._container.get_blob_client(path).get_block_list("committed")
        except NotFound:
            return None
        if [block.id for block in committed] != block_ids:
            return None
        return sum(int(block.size) for block in committed)

    def stage_block(self, path: str, block_id: str, url: str, offset: int, length: int) -> None:
        blob = self._container.get_blob_client(path)
        with storage_errors():
            try:
                blob.stage_block_from_url(block_id, url, source_offset=offset, source_length=length)
            except HttpResponseError as error:
                # Failures of the source come back as CannotVerifyCopySource with its status;
                # anything else is the destination's own fault and maps as a storage error.
                code = getattr(error, "error_code", None)
                if "CopySource" in str(getattr(code, "value", code)):
                    raise _source_error(error) from None
                raise

    def commit(self, path: str, block_ids: list[str], content_md5: str) -> SourceInfo:
        settings = (
            ContentSettings(content_md5=bytearray(base64.b64decode(content_md5))) if content_md5 else None
        )
        blob = self._container.get_blob_client(path)
        with storage_errors():
            blob.commit_block_list([BlobBlock(block_id) for block_id in block_ids], content_settings=settings)
            properties = blob.get_blob_properties()
        return SourceInfo(size=int(properties.size), etag=str(properties.etag), content_md5=content_md5)


class AzureModelFiles:
    """Registered files for readers: properties, small reads, short-lived read URLs, removal."""

    def __init__(self, container: ContainerClient, service: BlobServiceClient) -> None:
        self._container = container
        self._service = service
        self._delegation: tuple[UserDelegationKey, datetime] | None = None

    def stat(self, path: str) -> SourceInfo | None:
        try:
            with storage_errors():
                properties = self._container.get_blob_client(path).get_blob_properties()
        except NotFound:
            return None
        md5 = properties.content_settings.content_md5
        return SourceInfo(
            size=int(properties.size),
            etag=str(properties.etag),
            content_md5=base64.b64encode(bytes(md5)).decode() if md5 else "",
        )

    def read(self, path: str, max_bytes: int) -> bytes | None:
        try:
            with storage_errors():
                return bytes(self._container.download_blob(path, offset=0, length=max_bytes).readall())
        except NotFound:
            return None
        except HttpResponseError as error:
            if error.status_code == 416:  # a range of an empty blob: there is nothing to read
                return b""
            raise

    def read_range(self, path: str, offset: int, length: int, etag: str) -> bytes:
        with storage_errors(missing_is_conflict=False):
            stream = self._container.download_blob(
                path, offset=offset, length=length, etag=etag, match_condition=MatchConditions.IfNotModified
            )
            return bytes(stream.readall())

    def set_sha256(self, path: str, sha256: str, etag: str) -> str:
        blob = self._container.get_blob_client(path)
        with storage_errors(missing_is_conflict=True):
            written = blob.set_blob_metadata(
                {"sha256": sha256}, etag=etag, match_condition=MatchConditions.IfNotModified
            )
        return str(written["etag"])

    def delete(self, path: str) -> None:
        try:
            with storage_errors():
                self._container.get_blob_client(path).delete_blob()
        except NotFound:
            return

    def read_url(self, path: str, ttl: timedelta) -> str:
        """A read-only SAS URL: signed with the account key on the emulator, with a user delegation
        key (from the app's identity) in Azure, where shared keys are off."""
        now = datetime.now(UTC)
        start, expiry = now - timedelta(minutes=5), now + ttl
        credential = self._container.credential
        common: dict[str, Any] = {
            "account_name": self._container.account_name,
            "container_name": self._container.container_name,
            "blob_name": path,
            "permission": BlobSasPermissions(read=True),
            "start": start,
            "expiry": expiry,
        }
        if getattr(credential, "account_key", None):
            sas = generate_blob_sas(account_key=credential.account_key, **common)
        else:
            sas = generate_blob_sas(user_delegation_key=self._delegation_key(expiry), **common)
        return f"{self._container.get_blob_client(path).url}?{sas}"

    def _delegation_key(self, needed_until: datetime) -> UserDelegationKey:
        if self._delegation is None or self._delegation[1] < needed_until:
            now = datetime.now(UTC)
            valid_until = max(needed_until, now + timedelta(hours=12))
            with storage_errors():
                key = self._service.get_user_delegation_key(now - timedelta(minutes=5), valid_until)
            self._delegation = (key, valid_until)
        return self._delegation[0]

    def delete_prefix(self, prefix: str) -> int:
        """Delete every blob under the prefix, including one whose copy staged blocks but never
        committed them (listed only with uncommittedblobs)."""
        with storage_errors():
            names = [
                blob.name
                for blob in self._container.list_blobs(name_starts_with=prefix, include=["uncommittedblobs"])
            ]
            for name in names:
                blob = self._container.get_blob_client(name)
                try:
                    blob.delete_blob()
                except ResourceNotFoundError:
                    # Only uncommitted blocks: committing none makes it a blob that can be deleted.
                    blob.commit_block_list([])
                    blob.delete_blob()
        return len(names)
