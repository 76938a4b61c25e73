"""Decide the sealing key parameters of a deployment from what Azure holds, failing closed.

    python3 infra/sealing_key.py --subscription S --resource-group G --name-prefix P --out FILE \\
        [--mode keep|begin-rotation|finish-rotation]

writes FILE (mode 0600), an ARM parameters file for main.bicep with
- sealingKey: a new key (32 random bytes, base64) only when the resource group has no sealing key
  yet (mode keep) or when a rotation begins; empty otherwise;
- sealingKeyVersion: the secret version the app seals with, pinned;
- previousSealingKeyVersion: during a rotation, the version the app still opens sealed data with.

The pinned versions come from the deployed app's own settings (its Key Vault references), so a
routine deployment keeps exactly the keys the app runs with, even in the middle of a rotation, and
a new secret version made by hand changes nothing. Nothing is written unless every read succeeded:
only a 404 for the resource group or for the secret means "no key yet"; not being logged in, a
wrong subscription, 403, 429 or a network error stop the script with a non-zero exit and a message.
A secret that the app references but that is gone is an error too (recover it, do not replace it).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import secrets
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from azure_state import (
    Az,
    AzureStateError,
    app_settings,
    check_account,
    find_app,
    find_vault,
    group_exists,
)

SECRET_NAME = "registry-sealing-key"  # noqa: S105 (the secret's name, not a secret)
CURRENT_SETTING = "REGISTRY_SEALING_KEY"
PREVIOUS_SETTING = "REGISTRY_SEALING_PREVIOUS_KEYS"
MODES = ("keep", "begin-rotation", "finish-rotation")
_REFERENCE = re.compile(
    r"@Microsoft\.KeyVault\(SecretUri=https://(?P<vault>[A-Za-z0-9-]+)\.vault\.[^/]+/secrets/"
    r"(?P<secret>[A-Za-z0-9-]+)(?:/(?P<version>[0-9a-fA-F]{32})?)?/?\)"
)
_VERSION = re.compile(r"[0-9a-fA-F]{32}")


@dataclass(frozen=True)
class Reference:
    vault: str
    secret: str
    version: str | None


@dataclass(frozen=True)
class Decision:
    new_key: str
    version: str
    previous_version: str
    summary: str


def parse_reference(name: str, value: str) -> Reference | None:
    """The Key Vault reference in an app setting; None for an empty setting."""
    if not value:
        return None
    match = _REFERENCE.fullmatch(value.strip())
    if match is None:
        raise AzureStateError(
            f"the app setting {name} is not a Key Vault reference to a secret: refusing to guess"
        )
    return Reference(match["vault"], match["secret"], match["version"])


def new_key() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


@dataclass(frozen=True)
class KeyState:
    """What Azure holds: the vault, the secret's latest version, the app's two references."""

    vault: str | None
    latest: str | None
    current: Reference | None
    previous: Reference | None


_REPLACING_IS_WORSE = (
    "instead of deploying: a new key would make every sealed source URL and password unreadable"
)


def latest_version(az: Az, group: str, vault: str) -> str | None:
    """The secret's current version, from its metadata (no data-plane access); None when absent."""
    secret = az.read_or_absent(
        f"reading the metadata of secret {SECRET_NAME} in {vault}",
        "resource",
        "show",
        "--resource-group",
        group,
        "--namespace",
        "Microsoft.KeyVault",
        "--parent",
        f"vaults/{vault}",
        "--resource-type",
        "secrets",
        "--name",
        SECRET_NAME,
    )
    if secret is None:
        return None
    uri = str(secret.get("properties", {}).get("secretUriWithVersion", ""))
    version = uri.rsplit("/", 1)[-1]
    if not _VERSION.fullmatch(version):
        raise AzureStateError(f"secret {SECRET_NAME} has no readable current version ({uri!r})")
    return version


def read_state(az: Az, group: str, prefix: str) -> KeyState:
    check_account(az)
    if not group_exists(az, group):
        return KeyState(None, None, None, None)
    vault = find_vault(az, group, prefix)
    vault_name = str(vault["name"]) if vault is not None else None
    latest = latest_version(az, group, vault_name) if vault_name is not None else None
    app = find_app(az, group, prefix)
    settings = (app_settings(az, group, str(app["name"])) if app is not None else None) or {}
    state = KeyState(
        vault_name,
        latest,
        parse_reference(CURRENT_SETTING, settings.get(CURRENT_SETTING, "")),
        parse_reference(PREVIOUS_SETTING, settings.get(PREVIOUS_SETTING, "")),
    )
    check_references(state, group, prefix)
    return state


def check_references(state: KeyState, group: str, prefix: str) -> None:
    """The app's references must name this vault's sealing key secret, and it must still exist."""
    for ref in (state.current, state.previous):
        if ref is None:
            continue
        if state.vault is None:
            raise AzureStateError(
                f"the app reads its sealing key from vault {ref.vault}, which is not in {group} "
                f"(deleted?). Recover it (az keyvault recover) {_REPLACING_IS_WORSE}"
            )
        if ref.vault.lower() != state.vault.lower():
            raise AzureStateError(
                f"the app reads its sealing key from vault {ref.vault}, but the vault of prefix "
                f"{prefix!r} is {state.vault}: check --name-prefix"
            )
        if ref.secret != SECRET_NAME:
            raise AzureStateError(
                f"the app reads its sealing key from secret {ref.secret}, not {SECRET_NAME}"
            )
    if state.latest is None and state.current is not None:
        raise AzureStateError(
            f"the app uses sealing key secret {SECRET_NAME} in {state.vault}, but it cannot be found. "
            f"Recover it (az keyvault secret recover, or restore the vault) {_REPLACING_IS_WORSE}"
        )
    if state.previous is not None and not state.previous.version:
        raise AzureStateError(f"{PREVIOUS_SETTING} does not name a secret version: refusing to guess")


def decide(az: Az, group: str, prefix: str, mode: str) -> Decision:
    state = read_state(az, group, prefix)
    if state.latest is None:
        if mode != "keep":
            raise AzureStateError("there is no sealing key to rotate yet: deploy first")
        return Decision(
            new_key(), "", "", "no sealing key in the resource group yet: a new one will be stored"
        )
    # The version the app seals with: as pinned in its settings; the latest one for an app that
    # does not pin it yet (it used the latest one so far) or that is not deployed yet.
    version = (state.current.version if state.current else None) or state.latest
    previous = (state.previous.version if state.previous else None) or ""
    if mode == "keep":
        during = f"; rotation in progress, {previous} still readable" if previous else ""
        return Decision("", version, previous, f"keeping sealing key version {version}{during}")
    if mode == "begin-rotation":
        if previous:
            raise AzureStateError(
                f"a rotation is already in progress (previous key {previous}): reseal and finish it first"
            )
        return Decision(
            new_key(), "", version, f"rotation begins: a new key becomes current, {version} stays readable"
        )
    if not previous:
        raise AzureStateError("no rotation in progress: nothing to finish")
    return Decision("", version, "", f"rotation ends: {previous} is no longer read, {version} stays")


def write_parameters(path: Path, decision: Decision) -> None:
    """An ARM parameters file readable by the owner only, written whole or not at all."""
    document = {
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentParameters.json#",
        "contentVersion": "1.0.0.0",
        "parameters": {
            "sealingKey": {"value": decision.new_key},
            "sealingKeyVersion": {"value": decision.version},
            "previousSealingKeyVersion": {"value": decision.previous_version},
        },
    }
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".sealing-", suffix=".json")
    try:
        with os.fdopen(fd, "w") as out:  # mkstemp creates it with mode 0600
            json.dump(document, out)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscription", default=os.environ.get("AZURE_SUBSCRIPTION_ID", ""))
    parser.add_argument("--resource-group", required=True)
    parser.add_argument("--name-prefix", default="registry")
    parser.add_argument("--out", type=Path, required=True, help="parameters file to write")
    parser.add_argument("--mode", choices=MODES, default="keep")
    args = parser.parse_args(argv)
    try:
        decision = decide(Az(args.subscription), args.resource_group, args.name_prefix, args.mode)
        write_parameters(args.out, decision)
    except AzureStateError as error:
        print(f"sealing key: {error}", file=sys.stderr)
        print("sealing key: nothing was written; the deployment must not go on.", file=sys.stderr)
        return 1
    print(f"Sealing key: {decision.summary}.", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
