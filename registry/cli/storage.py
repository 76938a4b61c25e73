"""The user's own storage account: where `register` uploads a folder and what it signs links for.

- In Azure (`--storage-account NAME`): the Azure CLI login; links are user-delegation SAS, HTTPS only,
  from one key per registration that lives exactly as long as the links (links.link_lifetime).
- With `--storage-connection-string` (an account key): links are SAS signed with that key.
- On the local stack: the emulator's owner account (its key from the checkout), signed the same way.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from azure.core.exceptions import HttpResponseError, ResourceExistsError
from azure.storage.blob import (
    BlobSasPermissions,
    BlobServiceClient,
    ContainerClient,
    UserDelegationKey,
    generate_blob_sas,
)

from registry.cli.config import Config
from registry.cli.errors import CliError, UsageProblem

STORAGE_HINT = (
    "name your storage account with --storage-account (Azure login) or --storage-connection-string, "
    "or start the local stack with `make run`"
)


@dataclass
class OwnerStorage:
    """A container in the user's account, and how links to its blobs are signed."""

    container: ContainerClient
    signing: str  # "account key" or "user delegation"
    _sign: Callable[[str, datetime, datetime], str]

    @property
    def host(self) -> str:
        return urlsplit(self.container.url).hostname or ""

    @property
    def insecure(self) -> bool:
        return urlsplit(self.container.url).scheme == "http"

    def blob_url(self, blob: str) -> str:
        return self.container.get_blob_client(blob).url

    def ensure_container(self) -> None:
        with contextlib.suppress(ResourceExistsError):
            self.container.create_container()

    def read_links(self, blobs: list[str], start: datetime, expiry: datetime) -> dict[str, str]:
        """Read-only links to each blob, valid from `start` to `expiry`."""
        return {blob: f"{self.blob_url(blob)}?{self._sign(blob, start, expiry)}" for blob in blobs}


def _key_signer(account: str, container: str, key: str) -> Callable[[str, datetime, datetime], str]:
    def sign(blob: str, start: datetime, expiry: datetime) -> str:
        return generate_blob_sas(
            account, container, blob, account_key=key, permission=BlobSasPermissions(read=True),
            start=start, expiry=expiry,
        )  # fmt: skip

    return sign


def delegation_refused(account: str, problem: HttpResponseError) -> CliError:
    """A 403 for Get User Delegation Key: the login lacks generateUserDelegationKey on the account."""
    reason = (getattr(problem, "message", None) or str(problem)).strip().splitlines()[0]
    return CliError(
        f"storage account {account} refused your Azure login a user delegation key, so no read-only "
        f"links could be signed: {reason}",
        f"ask for the 'Storage Blob Delegator' role on the storage account {account} itself (a role on "
        "the container alone does not grant the key; Storage Blob Data Contributor on the account "
        "includes it), then run the same command again: your files are uploaded and nothing was registered",
    )


def _delegation_signer(
    service: BlobServiceClient, container: str
) -> Callable[[str, datetime, datetime], str]:
    """Read-only HTTPS SAS for single blobs, from one user delegation key per (start, expiry) window."""
    keys: dict[tuple[datetime, datetime], UserDelegationKey] = {}
    account = service.account_name or ""

    def key(start: datetime, expiry: datetime) -> UserDelegationKey:
        if (start, expiry) not in keys:
            try:
                keys[(start, expiry)] = service.get_user_delegation_key(start, expiry)
            except HttpResponseError as problem:
                if problem.status_code == 403:
                    raise delegation_refused(account, problem) from None
                raise
        return keys[(start, expiry)]

    def sign(blob: str, start: datetime, expiry: datetime) -> str:
        return generate_blob_sas(
            account, container, blob, user_delegation_key=key(start, expiry),
            permission=BlobSasPermissions(read=True), start=start, expiry=expiry, protocol="https",
        )  # fmt: skip

    return sign


def owner_storage(config: Config) -> OwnerStorage:
    """The user's container, from --storage-connection-string, --storage-account or the local stack."""
    stack = config.stack
    container = config.container
    if config.storage_connection_string:
        service = BlobServiceClient.from_connection_string(config.storage_connection_string)
        key = getattr(service.credential, "account_key", None)
        if not key:
            raise UsageProblem("--storage-connection-string must hold an AccountKey", STORAGE_HINT)
        account = service.account_name or ""
        return OwnerStorage(
            service.get_container_client(container), "account key", _key_signer(account, container, key)
        )
    if stack is not None and config.storage_account in (None, stack.owner_account):
        account, key = stack.owner_account, stack.owner_key()
        service = BlobServiceClient(
            f"{stack.blob_endpoint}/{account}", credential={"account_name": account, "account_key": key}
        )
        return OwnerStorage(
            service.get_container_client(container), "account key", _key_signer(account, container, key)
        )
    if config.storage_account:
        from azure.identity import AzureCliCredential

        service = BlobServiceClient(
            f"https://{config.storage_account}.blob.core.windows.net", credential=AzureCliCredential()
        )
        return OwnerStorage(
            service.get_container_client(container), "user delegation", _delegation_signer(service, container)
        )
    raise UsageProblem("no storage account to upload the model's files to", STORAGE_HINT)
