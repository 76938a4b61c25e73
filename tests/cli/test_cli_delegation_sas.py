"""`--storage-account NAME`: the links are user-delegation SAS from the Azure login.

Tested at the SDK boundary: a fake BlobServiceClient stands in for the account (its
get_user_delegation_key), and the SAS is the SDK's own generate_blob_sas. The emulator's account-key
SAS is exercised end to end elsewhere; the emulator has no user delegation keys.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import azure.identity
import httpx
import pytest
from azure.core.exceptions import HttpResponseError
from azure.storage.blob import ContainerClient, UserDelegationKey

from registry.cli import links, registering, storage
from registry.cli.config import Config
from registry.cli.errors import FAILED, CliError
from registry.cli.storage import OwnerStorage, owner_storage
from registry.cli.upload import FileOutcome, UploadReport
from tests.cli.conftest import model_folder
from tests.cli.test_cli_commands import API, FakeRegistry, isolated, run

__all__ = ["isolated"]  # the fixture that keeps the developer's settings out (autouse)

ACCOUNT = "ownerstore"
CONTAINER = "models"
MIB = 1024 * 1024
OID = "11111111-2222-3333-4444-555555555555"
TID = "66666666-7777-8888-9999-000000000000"
ISO = "%Y-%m-%dT%H:%M:%SZ"


def _forbidden() -> HttpResponseError:
    """What the SDK raises for a login without generateUserDelegationKey on the account."""
    problem = HttpResponseError(
        message="This request is not authorized to perform this operation using this permission.\n"
        "RequestId:0\nTime:2026-01-01T00:00:00Z\nErrorCode:AuthorizationPermissionMismatch"
    )
    problem.status_code = 403
    return problem


@dataclass
class FakeAccount:
    """A storage account as BlobServiceClient shows it, with a user delegation key to give (or not)."""

    refuse: HttpResponseError | None = None
    key_requests: list[tuple[datetime, datetime]] = field(default_factory=list)
    account_name: str = ACCOUNT

    @property
    def url(self) -> str:
        return f"https://{ACCOUNT}.blob.core.windows.net"

    def get_container_client(self, container: str) -> ContainerClient:
        return ContainerClient(self.url, container)  # makes no request until used

    def get_user_delegation_key(
        self, key_start_time: datetime, key_expiry_time: datetime, **kwargs: Any
    ) -> UserDelegationKey:
        self.key_requests.append((key_start_time, key_expiry_time))
        if self.refuse is not None:
            raise self.refuse
        key = UserDelegationKey()  # type: ignore[no-untyped-call]
        key.signed_oid, key.signed_tid = OID, TID
        key.signed_start, key.signed_expiry = key_start_time.strftime(ISO), key_expiry_time.strftime(ISO)
        key.signed_service, key.signed_version = "b", "2025-07-05"
        key.value = base64.b64encode(b"k" * 32).decode()
        return key


@pytest.fixture
def account(monkeypatch: pytest.MonkeyPatch) -> FakeAccount:
    """`owner_storage` for --storage-account finds this account, with the Azure CLI login stubbed."""
    fake = FakeAccount()

    def service(url: str, credential: Any) -> FakeAccount:
        assert url == fake.url and credential == "az login"
        return fake

    monkeypatch.setattr(storage, "BlobServiceClient", service)
    monkeypatch.setattr(azure.identity, "AzureCliCredential", lambda: "az login")
    return fake


def _azure_storage() -> OwnerStorage:
    return owner_storage(Config(None, None, None, ACCOUNT, None, CONTAINER, None))


def _sas(url: str) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}


def test_links_to_an_azure_account_are_https_read_only_blob_sas_signed_with_one_delegation_key(
    account: FakeAccount,
) -> None:
    owner = _azure_storage()
    assert owner.signing == "user delegation"
    start = datetime(2026, 3, 1, 11, 55, tzinfo=UTC)
    expiry = datetime(2026, 3, 1, 14, 0, tzinfo=UTC)
    blobs = ["m/1/score.py", "m/1/weights/w.bin"]
    signed = owner.read_links(blobs, start, expiry)
    assert account.key_requests == [(start, expiry)]  # one key for every link of the registration
    for blob in blobs:
        url = signed[blob]
        assert url.split("?")[0] == f"https://{ACCOUNT}.blob.core.windows.net/{CONTAINER}/{blob}"
        sas = _sas(url)
        assert sas["sp"] == "r"  # read, and nothing else
        assert sas["sr"] == "b"  # this blob alone, not its container
        assert sas["spr"] == "https"
        assert (sas["st"], sas["se"]) == (start.strftime(ISO), expiry.strftime(ISO))
        # signed with the user delegation key the account gave, valid for the same window
        assert (sas["skoid"], sas["sktid"], sas["sks"]) == (OID, TID, "b")
        assert (sas["skt"], sas["ske"]) == (sas["st"], sas["se"])
        assert sas["sig"]


def _report(total: int) -> UploadReport:
    return UploadReport([FileOutcome("w.bin", total, "uploaded", total, "bWQ1")], 1.0)


@dataclass
class _Session:
    api: Any = field(default_factory=lambda: type("Api", (), {"root": "https://registry.test"})())
    identity: Any = field(default_factory=lambda: type("Id", (), {"describe": lambda self: "alice"})())


def _links_window(
    account: FakeAccount, total: int
) -> tuple[datetime, tuple[datetime, datetime], dict[str, str]]:
    """What `register` asks the account for when it links `total` bytes: (now, key window, a SAS)."""
    now = datetime.now(UTC)
    urls, reused = registering._links(_Session(), _azure_storage(), "m", "1", "m/1/", _report(total))  # type: ignore[arg-type]
    assert not reused and len(account.key_requests) == 1
    return now, account.key_requests[0], _sas(urls["w.bin"])


def test_register_asks_for_a_key_that_lives_only_as_long_as_the_copy_needs(account: FakeAccount) -> None:
    total = 600 * MIB  # a minute's copy at the assumed rate
    now, (start, expiry), sas = _links_window(account, total)
    # valid from a little before now (clocks differ) ...
    assert now - timedelta(minutes=6) < start <= now
    # ... until the copy's documented lifetime: two hours plus one second per 10 MiB
    expected = now + links.MIN_LIFETIME + timedelta(seconds=60)
    assert abs(expiry - expected) < timedelta(seconds=5)
    assert sas["se"] == sas["ske"] == expiry.strftime(ISO)  # the links end with the key


def test_the_longest_key_stays_inside_the_services_seven_days_even_if_this_clock_runs_ahead(
    account: FakeAccount,
) -> None:
    # Get User Delegation Key refuses an expiry more than 7 days after the *service's* current time.
    now, (_, expiry), _ = _links_window(account, 10**15)
    assert expiry - now <= timedelta(days=7) - timedelta(minutes=5)
    assert expiry - now >= timedelta(days=6)


def test_a_login_refused_a_delegation_key_is_told_the_role_it_needs(account: FakeAccount) -> None:
    account.refuse = _forbidden()
    owner = _azure_storage()
    now = datetime.now(UTC)
    with pytest.raises(CliError) as refused:
        owner.read_links(["m/1/w.bin"], now, now + timedelta(hours=2))
    problem = refused.value
    assert problem.code == FAILED
    assert ACCOUNT in problem.message and "user delegation key" in problem.message
    assert "not authorized" in problem.message  # the service's own reason, first line only
    assert "RequestId" not in problem.message
    assert "Storage Blob Delegator" in problem.hint and "storage account" in problem.hint


def test_other_storage_failures_of_the_key_request_are_left_to_the_storage_error(
    account: FakeAccount,
) -> None:
    unavailable = HttpResponseError(message="Server busy")
    unavailable.status_code = 503
    account.refuse = unavailable
    now = datetime.now(UTC)
    with pytest.raises(HttpResponseError):
        _azure_storage().read_links(["m/1/w.bin"], now, now + timedelta(hours=2))


def test_register_without_the_delegator_role_exits_1_naming_the_role_and_registers_nothing(
    account: FakeAccount,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    account.refuse = _forbidden()
    folder = model_folder(tmp_path / "model", {})
    monkeypatch.setattr(
        registering, "_upload", lambda output, owner, files, prefix, settings: _report(30)
    )  # the upload itself is tested elsewhere; here it has succeeded
    registry = FakeRegistry(monkeypatch, lambda request: httpx.Response(404, json={"message": "Not found"}))
    code, out, err = run(
        capsys, "register", str(folder), "--name", "m", "--version", "1", "--storage-account", ACCOUNT,
        "--no-follow", *API,
    )  # fmt: skip
    assert code == FAILED, err
    assert "Storage Blob Delegator" in err and ACCOUNT in err
    assert "Traceback" not in err + out
    assert [r.method for r in registry.requests] == ["GET"]  # the status check; no PUT
