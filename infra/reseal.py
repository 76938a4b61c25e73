"""Run `python -m registry reseal` here, with the deployed app's settings, during a key rotation.

    python3 infra/reseal.py --subscription S --resource-group G [--name-prefix P]

Reads the function app's settings, resolves its two Key Vault references (the current sealing key
and the previous one) with `az keyvault secret show`, and runs the reseal command of the app's code
with those settings in its environment, so that everything sealed under the previous key is sealed
again under the current one. The keys exist only in that child process's environment: they are
never printed or written to disk.

Who runs it needs, besides az login: Key Vault Secrets User on the vault, Storage Table Data
Contributor (and Storage Blob Data Contributor) on the storage account, and network access to both
(from inside the virtual network in private network mode). The storage is reached with the
caller's own az login (DefaultAzureCredential), not the app's managed identity, so the identity
settings (`*__clientId`, `*__credential`) are left out. REGISTRY_PYTHON chooses the interpreter
(default: the repository's .venv, else this one).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from azure_state import Az, AzureStateError, app_settings, check_account, find_app
from sealing_key import CURRENT_SETTING, PREVIOUS_SETTING

ROOT = Path(__file__).resolve().parent.parent
# Settings that make sense only on the app's own instances.
_LOCAL_ONLY_SUFFIXES = ("__clientId", "__credential")
_LEFT_OUT = ("APPLICATIONINSIGHTS_CONNECTION_STRING", "APPLICATIONINSIGHTS_AUTHENTICATION_STRING")
_CONNECTIONS = ("AzureWebJobsStorage", "ServiceBusConnection")


def resolve(az: Az, setting: str, reference: str) -> str:
    """The secret value a Key Vault reference names (the caller needs read access to it)."""
    uri = reference.strip().removeprefix("@Microsoft.KeyVault(SecretUri=").removesuffix(")")
    if uri == reference.strip():
        raise AzureStateError(f"{setting} is not a Key Vault reference")
    value = az.read(f"reading the secret {setting} refers to", "keyvault", "secret", "show", "--id", uri)
    if not isinstance(value, dict) or not value.get("value"):
        raise AzureStateError(f"the secret {setting} refers to has no value")
    return str(value["value"])


def reseal_environment(az: Az, group: str, prefix: str) -> dict[str, str]:
    check_account(az)
    app = find_app(az, group, prefix)
    if app is None:
        raise AzureStateError(f"no function app func-{prefix}-... in {group}")
    settings = app_settings(az, group, str(app["name"]))
    if settings is None:
        raise AzureStateError(f"the function app {app['name']} disappeared while reading it")
    if not settings.get(PREVIOUS_SETTING):
        raise AzureStateError(
            f"no rotation in progress ({PREVIOUS_SETTING} is empty): nothing to reseal. "
            "Start one with infra/rotate-sealing-key.sh begin"
        )
    env = {
        name: value
        for name, value in settings.items()
        if not name.endswith(_LOCAL_ONLY_SUFFIXES) and name not in _LEFT_OUT
    }
    env[CURRENT_SETTING] = resolve(az, CURRENT_SETTING, settings[CURRENT_SETTING])
    env[PREVIOUS_SETTING] = resolve(az, PREVIOUS_SETTING, settings[PREVIOUS_SETTING])
    # The deployed app has no connection strings; empty ones here keep a developer's local values
    # (the emulator's, from the shell or local.settings.json) from taking the place of Azure's.
    for connection in _CONNECTIONS:
        env.setdefault(connection, "")
    return env


def interpreter() -> str:
    chosen = os.environ.get("REGISTRY_PYTHON")
    if chosen:
        return chosen
    venv = ROOT / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscription", default=os.environ.get("AZURE_SUBSCRIPTION_ID", ""))
    parser.add_argument("--resource-group", required=True)
    parser.add_argument("--name-prefix", default="registry")
    args = parser.parse_args(argv)
    try:
        settings = reseal_environment(Az(args.subscription), args.resource_group, args.name_prefix)
    except AzureStateError as error:
        print(f"reseal: {error}", file=sys.stderr)
        return 1
    env = {**os.environ, **settings}
    print(
        "Resealing everything stored under the previous key (python -m registry reseal) ...", file=sys.stderr
    )
    # --settings names no file: the settings are the deployed app's, never local.settings.json.
    no_file = ROOT / ".local" / "no-local-settings-for-reseal.json"
    command = [interpreter(), "-m", "registry", "reseal", "--settings", str(no_file)]
    done = subprocess.run(command, cwd=ROOT, env=env, check=False)
    if done.returncode != 0:
        print(
            f"reseal: python -m registry reseal failed (exit {done.returncode}); keep the previous key",
            file=sys.stderr,
        )
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
