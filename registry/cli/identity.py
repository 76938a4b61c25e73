"""Who the CLI calls the registry as.

- `--as USER`: the principal headers that a registry in dev mode trusts (the local stack).
- `--client-id ID`: a token for the app registration from the Azure CLI login
  (`AzureCliCredential`, scope `api://ID/user_impersonation`), as Easy Auth expects in Azure.
- Neither, against a registry on this machine: the local login name, as with `--as`.
"""

from __future__ import annotations

import base64
import getpass
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from registry.cli.config import Config, is_loopback
from registry.cli.errors import CliError

PRINCIPAL_ID = "X-MS-CLIENT-PRINCIPAL-ID"
PRINCIPAL_NAME = "X-MS-CLIENT-PRINCIPAL-NAME"
SIGN_IN_HINT = (
    "sign in with `az login`, and name the registry's app registration with --client-id or REGISTRY_CLIENT_ID"
)


class Identity(Protocol):
    def headers(self) -> dict[str, str]: ...

    def principal_id(self) -> str | None:
        """The caller's id as the registry records owners, if it can be known here."""
        ...

    def describe(self) -> str: ...


@dataclass(frozen=True)
class DevIdentity:
    user: str

    def headers(self) -> dict[str, str]:
        return {PRINCIPAL_ID: self.user, PRINCIPAL_NAME: self.user}

    def principal_id(self) -> str:
        return self.user

    def describe(self) -> str:
        return self.user


class TokenSource(Protocol):
    def get_token(self, *scopes: str) -> Any: ...


def token_claims(token: str) -> dict[str, Any]:
    """The claims of a JWT, unverified: only to read one's own id from one's own token."""
    try:
        payload = token.split(".")[1]
        claims: Any = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return {}
    return claims if isinstance(claims, dict) else {}


def _azure_cli_credential() -> TokenSource:
    from azure.identity import AzureCliCredential

    return AzureCliCredential()


@dataclass
class AzureIdentity:
    client_id: str
    credential_factory: Callable[[], TokenSource] = _azure_cli_credential
    clock: Callable[[], float] = time.time
    _token: str = field(default="", repr=False)
    _expires_on: float = 0.0

    @property
    def scope(self) -> str:
        return f"api://{self.client_id}/user_impersonation"

    def token(self) -> str:
        if not self._token or self._expires_on - self.clock() < 120:
            try:
                access = self.credential_factory().get_token(self.scope)
            except Exception as problem:  # the Azure CLI's own errors: not logged in, no consent, ...
                raise CliError(f"could not get a token for {self.scope}: {problem}", SIGN_IN_HINT) from None
            self._token, self._expires_on = access.token, float(access.expires_on)
        return self._token

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token()}"}

    def principal_id(self) -> str | None:
        oid = token_claims(self.token()).get("oid")
        return str(oid) if oid else None

    def describe(self) -> str:
        claims = token_claims(self.token())
        return str(claims.get("preferred_username") or claims.get("oid") or "your Azure login")


@dataclass(frozen=True)
class Anonymous:
    def headers(self) -> dict[str, str]:
        return {}

    def principal_id(self) -> None:
        return None

    def describe(self) -> str:
        return "nobody (no identity)"


def identity_for(config: Config, login_name: Callable[[], str] = getpass.getuser) -> Identity:
    if config.as_user:
        return DevIdentity(config.as_user)
    if config.client_id:
        return AzureIdentity(config.client_id)
    if config.api and is_loopback(config.api):
        return DevIdentity(login_name())
    return Anonymous()
