"""A stub `az` (and other commands) on PATH for the deployment scripts' tests.

A scenario is a list of rules; the stub answers a call with the first rule whose `args` all occur in
the call's arguments, in order (not necessarily adjacent), printing its stdout and stderr and
exiting with its code (after `sleep` seconds). A call no rule matches fails loudly. Every call is
logged (arguments, and the contents of any `@file` argument) so that tests can check what was
asked and what was passed.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SUBSCRIPTION = "00000000-1111-2222-3333-444444444444"
GROUP = "rg-registry"
VAULT = "kv-registry-abc123def4"
APP = "func-registry-abc123def4567"
OLD_VERSION = "0123456789abcdef0123456789abcdef"
NEW_VERSION = "fedcba9876543210fedcba9876543210"
VAULT_ID = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{GROUP}/providers/Microsoft.KeyVault/vaults/{VAULT}"
APP_ID = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{GROUP}/providers/Microsoft.Web/sites/{APP}"

NOT_LOGGED_IN = "ERROR: Please run 'az login' to setup account.\n"
NO_SUCH_SUBSCRIPTION = "ERROR: Subscription 'nope' not found. Check the spelling and casing and try again.\n"
FORBIDDEN = (
    "ERROR: (AuthorizationFailed) The client 'someone@example.com' with object id '1' does not have "
    "authorization to perform action 'Microsoft.Resources/subscriptions/resourcegroups/read' over scope "
    "'/subscriptions/x/resourcegroups/rg-registry' or the scope is invalid.\nCode: AuthorizationFailed\n"
)
THROTTLED = "ERROR: (TooManyRequests) Number of requests exceeded the limit. Please retry after 17 seconds.\n"
NETWORK = (
    "ERROR: HTTPSConnectionPool(host='management.azure.com', port=443): Max retries exceeded with url: "
    "/subscriptions/x (Caused by NewConnectionError('Failed to establish a new connection: [Errno -3] "
    "Temporary failure in name resolution'))\n"
)
GROUP_NOT_FOUND = "ERROR: (ResourceGroupNotFound) Resource group 'rg-registry' could not be found.\n"
SECRET_NOT_FOUND = (
    "ERROR: (ResourceNotFound) The Resource 'Microsoft.KeyVault/vaults/kv-registry-abc123def4/secrets/"
    "registry-sealing-key' under resource group 'rg-registry' was not found.\n"
)

_STUB = r"""#!PYTHON
import json, os, sys, time
args = sys.argv[1:]
scenario = json.load(open(os.environ["STUB_SCENARIO"]))
files = {a[1:]: open(a[1:]).read() for a in args if a.startswith("@") and os.path.isfile(a[1:])}
with open(os.environ["STUB_LOG"], "a") as log:
    log.write(json.dumps({"command": os.path.basename(sys.argv[0]), "args": args, "files": files}) + "\n")
def matches(wanted, given):
    it = iter(given)
    return all(any(w == g for g in it) for w in wanted)
for rule in scenario.get(os.path.basename(sys.argv[0]), []):
    if matches(rule["args"], args):
        time.sleep(rule.get("sleep", 0))
        sys.stdout.write(rule.get("stdout", ""))
        sys.stderr.write(rule.get("stderr", ""))
        sys.exit(rule.get("exit", 0))
sys.stderr.write("stub: no rule for " + " ".join(args) + "\n")
sys.exit(99)
"""


@dataclass
class Rule:
    args: list[str]
    stdout: Any = ""
    stderr: str = ""
    exit: int = 0
    sleep: float = 0

    def as_json(self) -> dict[str, Any]:
        out = self.stdout if isinstance(self.stdout, str) else json.dumps(self.stdout)
        return {
            "args": self.args,
            "stdout": out,
            "stderr": self.stderr,
            "exit": self.exit,
            "sleep": self.sleep,
        }


@dataclass
class Stubs:
    """Stub commands in `bin`; `rules[command]` is tried in order, so insert overrides at the front."""

    bin: Path
    scenario: Path
    log: Path
    rules: dict[str, list[Rule]] = field(default_factory=dict)

    def add(self, command: str, *rules: Rule, first: bool = False) -> None:
        self._install(command)
        existing = self.rules.setdefault(command, [])
        self.rules[command] = [*rules, *existing] if first else [*existing, *rules]
        self._write()

    def fail(self, *args: str, stderr: str, exit: int = 1) -> None:
        """Make the matching az call fail (before any other rule for it)."""
        self.add("az", Rule(list(args), stderr=stderr, exit=exit), first=True)

    def calls(self, command: str = "az") -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        entries = [json.loads(line) for line in self.log.read_text().splitlines()]
        return [e for e in entries if e["command"] == command]

    def env(self, **extra: str) -> dict[str, str]:
        path = f"{self.bin}{os.pathsep}{os.environ['PATH']}"
        return {
            **os.environ,
            "PATH": path,
            "STUB_SCENARIO": str(self.scenario),
            "STUB_LOG": str(self.log),
            **extra,
        }

    def _install(self, command: str) -> None:
        target = self.bin / command
        if not target.exists():
            target.write_text(_STUB.replace("PYTHON", sys.executable, 1))
            target.chmod(target.stat().st_mode | stat.S_IXUSR)

    def _write(self) -> None:
        self.scenario.write_text(
            json.dumps({cmd: [r.as_json() for r in rules] for cmd, rules in self.rules.items()})
        )


def reference(version: str | None) -> str:
    tail = f"/{version}" if version else ""
    return (
        f"@Microsoft.KeyVault(SecretUri=https://{VAULT}.vault.azure.net/secrets/registry-sealing-key{tail})"
    )


def deployed_registry(
    stubs: Stubs,
    *,
    pinned: str | None = OLD_VERSION,
    previous: str | None = None,
    latest: str = NEW_VERSION,
    extra_settings: dict[str, str] | None = None,
) -> None:
    """az answers for a resource group holding a deployed registry whose app pins `pinned`."""
    settings = {"AzureWebJobsStorage__accountName": "stregistry", "REGISTRY_JOB_QUEUE": "servicebus"}
    if pinned is not None:
        settings["REGISTRY_SEALING_KEY"] = reference(pinned if pinned else None)
    settings["REGISTRY_SEALING_PREVIOUS_KEYS"] = reference(previous) if previous else ""
    settings.update(extra_settings or {})
    stubs.add(
        "az",
        Rule(["version"], stdout="2.89.1\n"),
        Rule(["account", "show", "--query", "name"], stdout="Test subscription\n"),
        Rule(["account", "show", "--query", "user.type"], stdout="user\n"),
        Rule(["account", "show", "--query", "tenantId"], stdout="tenant\n"),
        Rule(["account", "show"], stdout={"id": SUBSCRIPTION, "name": "Test subscription"}),
        Rule(["group", "show"], stdout={"name": GROUP}),
        Rule(
            ["resource", "list", "Microsoft.KeyVault/vaults"],
            stdout=[
                # Another deployment's vault in the same group (another prefix), tagged the same way.
                {
                    "name": "kv-registryx-0000000000",
                    "id": VAULT_ID + "x",
                    "tags": {"registry-role": "sealing-key"},
                },
                {"name": VAULT, "id": VAULT_ID, "tags": {"registry-role": "sealing-key"}},
            ],
        ),
        Rule(
            ["resource", "show", "secrets"],
            stdout={
                "properties": {
                    "secretUriWithVersion": f"https://{VAULT}.vault.azure.net/secrets/registry-sealing-key/{latest}"
                }
            },
        ),
        Rule(
            ["resource", "list", "Microsoft.Web/sites"],
            stdout=[{"name": "func-other-zzzz", "id": APP_ID + "z"}, {"name": APP, "id": APP_ID}],
        ),
        Rule(
            ["functionapp", "config", "appsettings", "list"],
            stdout=[{"name": k, "value": v, "slotSetting": False} for k, v in settings.items()],
        ),
        Rule(["functionapp", "show"], stdout={"defaultHostName": f"{APP}.azurewebsites.net"}),
        Rule(["deployment", "group", "create"], stdout=""),
        Rule(["deployment", "group", "what-if"], stdout="What-if: no change\n"),
    )


def empty_group(stubs: Stubs) -> None:
    """az answers for a resource group that does not exist yet."""
    stubs.add(
        "az",
        Rule(["version"], stdout="2.89.1\n"),
        Rule(["account", "show", "--query", "name"], stdout="Test subscription\n"),
        Rule(["account", "show"], stdout={"id": SUBSCRIPTION, "name": "Test subscription"}),
        Rule(["group", "show"], stderr=GROUP_NOT_FOUND, exit=3),
    )
