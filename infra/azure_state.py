"""What the deployment scripts read from Azure, through the Azure CLI, failing closed.

Every `az` call names the subscription explicitly. A call that fails stops the script with a
message that says why (not logged in, no access, throttled, network): only a 404 from the resource
asked about ("not found", azure-cli exit code 3) means that the resource is absent. The vault and
the function app are found by name, `kv-<prefix>-...` and `func-<prefix>-...` as main.bicep names
them, never by tag or position.

    python3 infra/azure_state.py app-host --subscription S --resource-group G --name-prefix P

prints the function app's host name (deploy.sh --smoke-only uses it). Standard library only.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

# azure-cli exits with 3 when the service answered 404 (ResourceNotFoundError).
NOT_FOUND_EXIT = 3
_NOT_FOUND_TEXT = re.compile(r"NotFound|not found|could not be found", re.IGNORECASE)
AZ_TIMEOUT_SECONDS = 120


class AzureStateError(Exception):
    """Azure could not be read, so nothing may be decided: the message says why and what to do."""


@dataclass(frozen=True)
class AzResult:
    returncode: int
    stdout: str
    stderr: str

    @property
    def not_found(self) -> bool:
        return self.returncode == NOT_FOUND_EXIT and bool(_NOT_FOUND_TEXT.search(self.stderr))


def explain(what: str, result: AzResult) -> str:
    """A message for a failed `az` call: what failed, the likely cause, and what to do."""
    text = result.stderr.strip()
    lowered = text.lower()
    detail = "\n  ".join(text.splitlines()[-3:]) or f"exit code {result.returncode}, no message"
    if "az login" in lowered or "aadsts" in lowered or "no subscription found" in lowered:
        cause = "az is not logged in (azd auth login does not log az in): run az login"
    elif "subscription" in lowered and "not found" in lowered and "resource" not in lowered:
        cause = "az cannot see that subscription: check the id and that az login used the right tenant"
    elif "authorizationfailed" in lowered or "forbidden" in lowered or "(403)" in lowered:
        cause = "not allowed (403): the signed-in principal needs access to the resource group"
    elif "toomanyrequests" in lowered or "(429)" in lowered or "throttl" in lowered:
        cause = "Azure throttled the request (429): wait a minute and run again"
    elif any(word in lowered for word in ("connection", "timed out", "timeout", "name resolution")):
        cause = "Azure could not be reached (network): check the connection and run again"
    else:
        cause = "the Azure CLI failed"
    return f"{what}: {cause}.\n  {detail}"


class Az:
    """The Azure CLI, bound to one subscription; JSON in, JSON out."""

    def __init__(self, subscription: str, command: str = "az") -> None:
        if not subscription:
            raise AzureStateError("no subscription given: pass --subscription (or AZURE_SUBSCRIPTION_ID)")
        self.subscription = subscription
        self.command = command

    def run(self, *args: str) -> AzResult:
        argv = [self.command, *args, "--subscription", self.subscription, "--only-show-errors", "-o", "json"]
        try:
            done = subprocess.run(
                argv, capture_output=True, text=True, timeout=AZ_TIMEOUT_SECONDS, check=False
            )
        except FileNotFoundError:
            raise AzureStateError("the Azure CLI (az) is not installed or not on PATH") from None
        except subprocess.TimeoutExpired:
            raise AzureStateError(
                f"az {' '.join(args[:3])} did not answer in {AZ_TIMEOUT_SECONDS} s: check the network"
            ) from None
        return AzResult(done.returncode, done.stdout, done.stderr)

    def read(self, what: str, *args: str) -> Any:
        """The JSON answer of a call that must succeed."""
        result = self.run(*args)
        if result.returncode != 0:
            raise AzureStateError(explain(what, result))
        return _parse(what, result)

    def read_or_absent(self, what: str, *args: str) -> Any | None:
        """The JSON answer, or None when the thing asked about does not exist (404); anything else fails."""
        result = self.run(*args)
        if result.not_found:
            return None
        if result.returncode != 0:
            raise AzureStateError(explain(what, result))
        return _parse(what, result)


def _parse(what: str, result: AzResult) -> Any:
    try:
        return json.loads(result.stdout) if result.stdout.strip() else None
    except json.JSONDecodeError:
        raise AzureStateError(f"{what}: the Azure CLI answered something that is not JSON") from None


def check_account(az: Az) -> str:
    """The subscription's display name; fails when az is not logged in or cannot use the subscription."""
    account = az.read(f"reading subscription {az.subscription}", "account", "show")
    if not isinstance(account, dict) or az.subscription not in (account.get("id"), account.get("name")):
        raise AzureStateError(f"az answered for another subscription than {az.subscription}")
    return str(account.get("name") or account.get("id"))


def group_exists(az: Az, group: str) -> bool:
    return az.read_or_absent(f"reading resource group {group}", "group", "show", "--name", group) is not None


def find_by_name(az: Az, group: str, resource_type: str, pattern: re.Pattern[str]) -> dict[str, Any] | None:
    """The one resource of that type in the group whose name matches; None when there is none."""
    found = az.read(
        f"listing {resource_type} in {group}",
        "resource",
        "list",
        "--resource-group",
        group,
        "--resource-type",
        resource_type,
    )
    matches = [r for r in found or [] if isinstance(r, dict) and pattern.fullmatch(str(r.get("name", "")))]
    if len(matches) > 1:
        names = ", ".join(sorted(str(r["name"]) for r in matches))
        raise AzureStateError(f"more than one {resource_type} in {group} matches {pattern.pattern}: {names}")
    return matches[0] if matches else None


def vault_pattern(prefix: str) -> re.Pattern[str]:
    return re.compile(rf"kv-{re.escape(prefix)}-[a-z0-9]+")


def app_pattern(prefix: str) -> re.Pattern[str]:
    return re.compile(rf"func-{re.escape(prefix)}-[a-z0-9]+")


def find_vault(az: Az, group: str, prefix: str) -> dict[str, Any] | None:
    return find_by_name(az, group, "Microsoft.KeyVault/vaults", vault_pattern(prefix))


def find_app(az: Az, group: str, prefix: str) -> dict[str, Any] | None:
    return find_by_name(az, group, "Microsoft.Web/sites", app_pattern(prefix))


def app_settings(az: Az, group: str, app: str) -> dict[str, str] | None:
    """The app's settings (name to value); None when the app is gone."""
    listed = az.read_or_absent(
        f"reading the app settings of {app}",
        "functionapp",
        "config",
        "appsettings",
        "list",
        "--resource-group",
        group,
        "--name",
        app,
    )
    if listed is None:
        return None
    return {str(s["name"]): str(s.get("value") or "") for s in listed if isinstance(s, dict) and "name" in s}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Read the registry's deployment state from Azure.")
    parser.add_argument("query", choices=["app-host"])
    parser.add_argument("--subscription", required=True)
    parser.add_argument("--resource-group", required=True)
    parser.add_argument("--name-prefix", default="registry")
    args = parser.parse_args(argv)
    try:
        az = Az(args.subscription)
        check_account(az)
        app = find_app(az, args.resource_group, args.name_prefix)
        if app is None:
            raise AzureStateError(f"no function app func-{args.name_prefix}-... in {args.resource_group}")
        name = str(app["name"])
        shown = az.read(
            f"reading {name}", "functionapp", "show", "--resource-group", args.resource_group, "--name", name
        )
    except AzureStateError as error:
        print(f"azure_state: {error}", file=sys.stderr)
        return 1
    print(shown["defaultHostName"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
