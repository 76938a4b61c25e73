"""Where the registry and the user's storage are, and who is asking.

Every setting comes from, in order: a flag, an environment variable, the config file
(`$REGISTRY_CONFIG`, else `~/.config/registry/config.yaml`), and last the local stack that
`make run` describes in `.local/stack.json` (found from the working directory upwards, or in
the checkout this package runs from).
"""

from __future__ import annotations

import ast
import ipaddress
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from registry.cli.errors import UsageProblem

# setting -> environment variable
ENVIRONMENT = {
    "api": "REGISTRY_API",
    "as": "REGISTRY_AS",
    "client_id": "REGISTRY_CLIENT_ID",
    "storage_account": "REGISTRY_STORAGE_ACCOUNT",
    "storage_connection_string": "REGISTRY_STORAGE_CONNECTION_STRING",
    "container": "REGISTRY_CONTAINER",
}
DEFAULT_CONTAINER = "models"
STACK_FILE = Path(".local") / "stack.json"


@dataclass(frozen=True)
class LocalStack:
    """What `make run` wrote: the API and the emulator, in a checkout of this repository."""

    api: str
    blob_endpoint: str
    owner_account: str
    checkout: Path

    def owner_key(self) -> str:
        """The emulator owner account's key: `OWNER_ACCOUNT` of the checkout's devhost/azurite.py.

        Read as a literal, not imported: the checkout's code is not run to learn one constant.
        """
        source = self.checkout / "devhost" / "azurite.py"
        try:
            tree = ast.parse(source.read_text())
        except (OSError, SyntaxError):
            raise UsageProblem(f"cannot read {source}: the local stack's checkout is incomplete") from None
        for node in tree.body:
            if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "OWNER_ACCOUNT" for t in node.targets
            ):
                name, key = ast.literal_eval(node.value)
                if name != self.owner_account:
                    raise UsageProblem(f"the local stack's owner account is {self.owner_account}, not {name}")
                return str(key)
        raise UsageProblem(f"{source} defines no OWNER_ACCOUNT")


@dataclass(frozen=True)
class Config:
    api: str | None
    as_user: str | None
    client_id: str | None
    storage_account: str | None
    storage_connection_string: str | None
    container: str
    stack: LocalStack | None


def config_path(environ: Mapping[str, str]) -> Path:
    if environ.get("REGISTRY_CONFIG"):
        return Path(environ["REGISTRY_CONFIG"])
    base = Path(environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "registry" / "config.yaml"


def read_config_file(path: Path) -> dict[str, str]:
    """The config file's settings; a missing file is empty, an unknown key is an error."""
    if not path.exists():
        return {}
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as problem:
        raise UsageProblem(f"{path} is not valid YAML: {problem}") from None
    if not isinstance(values, dict):
        raise UsageProblem(f"{path} must hold a mapping of settings")
    unknown = sorted(set(values) - set(ENVIRONMENT))
    if unknown:
        raise UsageProblem(
            f"{path}: unknown setting(s) {', '.join(unknown)}", f"known settings: {', '.join(ENVIRONMENT)}"
        )
    return {key: str(value) for key, value in values.items() if value is not None}


PACKAGE_CHECKOUT = Path(__file__).resolve().parents[2]  # the repository, when run from a checkout


def read_stack(path: Path) -> LocalStack | None:
    """The stack file; its checkout is the one it sits in (`.local/stack.json`), else this package's."""
    in_checkout = path.resolve().parent.parent
    checkout = in_checkout if (in_checkout / "devhost" / "azurite.py").exists() else PACKAGE_CHECKOUT
    try:
        data: Any = json.loads(path.read_text())
        return LocalStack(
            api=str(data["api"]),
            blob_endpoint=str(data["blob_endpoint"]),
            owner_account=str(data["accounts"]["owner"]),
            checkout=checkout,
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def find_stack(environ: Mapping[str, str], cwd: Path, checkout: Path = PACKAGE_CHECKOUT) -> LocalStack | None:
    """`$REGISTRY_STACK`, else `.local/stack.json` in `cwd` or a parent, else in this package's checkout."""
    if environ.get("REGISTRY_STACK"):
        return read_stack(Path(environ["REGISTRY_STACK"]))
    for directory in (cwd, *cwd.parents, checkout):
        candidate = directory / STACK_FILE
        if candidate.is_file():
            return read_stack(candidate)
    return None


def api_root(url: str) -> str:
    """The API's origin: `http://host:port` from any of `.../`, `.../api` or `.../api/v1.0`."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UsageProblem(
            f"--api must be an http(s) URL, not {url!r}", "e.g. --api https://<app>.azurewebsites.net"
        )
    path = parts.path.rstrip("/")
    for suffix in ("/api/v1.0", "/api"):
        path = path.removesuffix(suffix)
    return f"{parts.scheme}://{parts.netloc}{path}"


def is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def resolve(
    flags: Mapping[str, str | None],
    environ: Mapping[str, str],
    file_values: Mapping[str, str],
    stack: LocalStack | None,
) -> Config:
    """Flags, then the environment, then the config file, then the local stack."""

    def pick(key: str) -> str | None:
        for value in (flags.get(key), environ.get(ENVIRONMENT[key]), file_values.get(key)):
            if value:
                return value
        return None

    api = pick("api") or (stack.api if stack else None)
    return Config(
        api=api_root(api) if api else None,
        as_user=pick("as"),
        client_id=pick("client_id"),
        storage_account=pick("storage_account"),
        storage_connection_string=pick("storage_connection_string"),
        container=pick("container") or DEFAULT_CONTAINER,
        stack=stack,
    )


def load(flags: Mapping[str, str | None], environ: Mapping[str, str] | None = None) -> Config:
    env = os.environ if environ is None else environ
    return resolve(flags, env, read_config_file(config_path(env)), find_stack(env, Path.cwd()))
