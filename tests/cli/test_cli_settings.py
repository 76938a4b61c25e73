"""Unit tests: where the CLI finds the registry and the storage, and who it calls as."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from devhost.azurite import OWNER_ACCOUNT, REPO
from registry.cli import config
from registry.cli.config import LocalStack, api_root, find_stack, read_config_file, resolve
from registry.cli.errors import USAGE, CliError, UsageProblem
from registry.cli.identity import Anonymous, AzureIdentity, DevIdentity, identity_for, token_claims

STACK = LocalStack("http://127.0.0.1:7071", "http://127.0.0.1:10100", "modelowner", REPO)


def test_a_flag_beats_the_environment_which_beats_the_config_file_which_beats_the_local_stack() -> None:
    env = {"REGISTRY_API": "http://env:1", "REGISTRY_AS": "env-user", "REGISTRY_CONTAINER": "env-box"}
    file_values = {"api": "http://file:1", "as": "file-user", "container": "file-box", "client_id": "file-id"}
    chosen = resolve({"api": "http://flag:1", "as": None}, env, file_values, STACK)
    assert (chosen.api, chosen.as_user, chosen.container, chosen.client_id) == (
        "http://flag:1",
        "env-user",
        "env-box",
        "file-id",
    )
    assert resolve({}, {}, file_values, STACK).api == "http://file:1"
    assert resolve({}, {}, {}, STACK).api == STACK.api
    assert resolve({}, {}, {}, None).api is None
    assert resolve({}, {}, {}, None).container == config.DEFAULT_CONTAINER


@pytest.mark.parametrize(
    "given",
    [
        "https://r.example.net",
        "https://r.example.net/",
        "https://r.example.net/api",
        "https://r.example.net/api/v1.0/",
    ],
)
def test_the_api_url_may_be_given_with_or_without_its_api_path(given: str) -> None:
    assert api_root(given) == "https://r.example.net"


def test_an_api_url_that_is_not_http_is_a_usage_error() -> None:
    with pytest.raises(UsageProblem) as refused:
        api_root("registry.example.net")
    assert refused.value.code == USAGE


def test_an_unknown_setting_in_the_config_file_is_a_usage_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("api: https://r.example.net\nstorage_acount: typo\n")
    with pytest.raises(UsageProblem, match="storage_acount"):
        read_config_file(path)
    path.write_text("api: https://r.example.net\nclient_id: abc\n")
    assert read_config_file(path) == {"api": "https://r.example.net", "client_id": "abc"}
    assert read_config_file(tmp_path / "missing.yaml") == {}


def _checkout(root: Path, key_line: str) -> Path:
    (root / "devhost").mkdir(parents=True)
    (root / "devhost" / "azurite.py").write_text(key_line)
    (root / ".local").mkdir()
    (root / ".local" / "stack.json").write_text(
        json.dumps(
            {
                "api": "http://127.0.0.1:7999",
                "blob_endpoint": "http://127.0.0.1:10999",
                "accounts": {"owner": "me"},
            }
        )
    )
    return root


def test_the_local_stack_is_found_from_a_subfolder_of_its_checkout(tmp_path: Path) -> None:
    checkout = _checkout(tmp_path / "repo", "OWNER_ACCOUNT = ('me', 'a-key')\n")
    nested = checkout / "models" / "mine"
    nested.mkdir(parents=True)
    stack = find_stack({}, nested, checkout=tmp_path / "elsewhere")
    assert stack is not None
    assert (stack.api, stack.blob_endpoint, stack.owner_account) == (
        "http://127.0.0.1:7999",
        "http://127.0.0.1:10999",
        "me",
    )
    assert stack.owner_key() == "a-key"
    assert find_stack({}, tmp_path, checkout=tmp_path / "elsewhere") is None
    assert find_stack({"REGISTRY_STACK": str(checkout / ".local" / "stack.json")}, tmp_path) == stack


def test_the_emulator_key_is_read_from_the_checkout_as_a_literal_without_running_its_code(
    tmp_path: Path,
) -> None:
    checkout = _checkout(
        tmp_path / "repo", "raise SystemExit('ran')\nOWNER_ACCOUNT = ('me', 'literal-key')\n"
    )
    stack = find_stack({}, checkout, checkout=checkout)
    assert stack is not None and stack.owner_key() == "literal-key"
    assert LocalStack("", "", OWNER_ACCOUNT[0], REPO).owner_key() == OWNER_ACCOUNT[1]


def test_as_user_sends_the_principal_headers_a_dev_mode_registry_trusts() -> None:
    identity = identity_for(resolve({"as": "bob", "api": "https://r.example.net"}, {}, {}, None))
    assert isinstance(identity, DevIdentity)
    assert identity.headers() == {"X-MS-CLIENT-PRINCIPAL-ID": "bob", "X-MS-CLIENT-PRINCIPAL-NAME": "bob"}
    assert identity.principal_id() == "bob"


def test_against_a_registry_on_this_machine_the_login_name_is_the_caller() -> None:
    identity = identity_for(
        resolve({"api": "http://127.0.0.1:7071"}, {}, {}, None), login_name=lambda: "carol"
    )
    assert identity == DevIdentity("carol")
    assert isinstance(identity_for(resolve({"api": "https://r.example.net"}, {}, {}, None)), Anonymous)


def _jwt(claims: dict[str, Any]) -> str:
    payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    return f"header.{payload}.signature"


@dataclass
class FakeAccess:
    token: str
    expires_on: float


class FakeCredential:
    def __init__(self, token: str) -> None:
        self.token = token
        self.scopes: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str) -> FakeAccess:
        self.scopes.append(scopes)
        return FakeAccess(self.token, 1000.0)


def test_a_client_id_gets_a_token_for_the_app_scope_and_the_caller_id_from_its_claims() -> None:
    credential = FakeCredential(_jwt({"oid": "0000-oid", "preferred_username": "dana@example.net"}))
    clock = [0.0]
    identity = AzureIdentity("app-123", credential_factory=lambda: credential, clock=lambda: clock[0])
    assert identity.headers() == {"Authorization": f"Bearer {credential.token}"}
    assert identity.principal_id() == "0000-oid"
    assert identity.describe() == "dana@example.net"
    assert credential.scopes == [("api://app-123/user_impersonation",)]  # cached while valid
    clock[0] = 950.0  # within two minutes of expiry: a new token
    identity.headers()
    assert len(credential.scopes) == 2
    assert isinstance(identity_for(resolve({"client_id": "app-123"}, {}, {}, None)), AzureIdentity)


def test_a_failed_azure_cli_login_says_to_sign_in() -> None:
    def not_logged_in() -> FakeCredential:
        raise RuntimeError("Please run 'az login' to setup account.")

    with pytest.raises(CliError, match="az login"):
        AzureIdentity("app-123", credential_factory=not_logged_in).headers()


def test_a_token_that_is_not_a_jwt_has_no_claims() -> None:
    assert token_claims("opaque") == {}
    assert token_claims(_jwt({"oid": "x"})) == {"oid": "x"}
