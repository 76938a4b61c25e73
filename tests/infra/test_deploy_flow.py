"""deploy.sh, rotate-sealing-key.sh, reseal.py and the azd hooks, run against stub commands: they
refuse to go on when Azure cannot be read, never pass a key they should not, bound the code
deployment in time, and hand the deployment exactly the sealing key parameters decided."""

from __future__ import annotations

import json
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import pytest

from tests.infra import INFRA
from tests.infra.stub_az import (
    FORBIDDEN,
    GROUP,
    NEW_VERSION,
    OLD_VERSION,
    SUBSCRIPTION,
    Rule,
    Stubs,
    deployed_registry,
    empty_group,
)

CLIENT_ID = "11111111-2222-3333-4444-555555555555"
BASE = ["-s", SUBSCRIPTION, "-g", GROUP, "-c", CLIENT_ID]


def run(
    stubs: Stubs, script: str, *args: str, cwd: Path | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(INFRA / script), *args],
        env=stubs.env(**env),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def deployment_parameters(stubs: Stubs) -> dict[str, Any]:
    """What `az deployment group create` was given: the parameters file plus the name=value ones."""
    calls = [c for c in stubs.calls() if c["args"][:3] == ["deployment", "group", "create"]]
    assert len(calls) == 1, f"expected one deployment, got {len(calls)}"
    files = list(calls[0]["files"].values())
    assert len(files) == 1
    values: dict[str, Any] = {k: v["value"] for k, v in json.loads(files[0])["parameters"].items()}
    args = calls[0]["args"]
    start = args.index("--parameters") + 2
    for item in args[start:]:
        if item.startswith("--"):
            break
        name, _, value = item.partition("=")
        values[name] = value
    return values


def deployed(stubs: Stubs) -> bool:
    return any(c["args"][:3] == ["deployment", "group", "create"] for c in stubs.calls())


# --- deploy.sh -------------------------------------------------------------------------------------


def test_deploy_needs_an_explicit_subscription_before_calling_azure(stubs: Stubs) -> None:
    deployed_registry(stubs)
    done = run(stubs, "deploy.sh", "-g", GROUP, "-c", CLIENT_ID, AZURE_SUBSCRIPTION_ID="")
    assert done.returncode != 0 and "subscription explicitly" in done.stderr
    assert stubs.calls() == []


def test_deploy_refuses_an_az_older_than_the_flex_health_check_fix(stubs: Stubs) -> None:
    deployed_registry(stubs)
    stubs.add("az", Rule(["version"], stdout="2.86.0\n"), first=True)
    done = run(stubs, "deploy.sh", *BASE)
    assert done.returncode != 0
    assert "2.86.0 is too old" in done.stderr and "2.87.0" in done.stderr
    assert not deployed(stubs)


def test_deploy_stops_before_deploying_when_the_sealing_key_state_cannot_be_read(stubs: Stubs) -> None:
    deployed_registry(stubs)
    stubs.fail("resource", "show", "secrets", stderr=FORBIDDEN)
    done = run(stubs, "deploy.sh", *BASE, "--infra-only")
    assert done.returncode != 0 and "not allowed (403)" in done.stderr
    assert not deployed(stubs)


def test_deploy_stops_when_the_resource_group_cannot_be_read(stubs: Stubs) -> None:
    deployed_registry(stubs)
    stubs.fail("group", "show", stderr=FORBIDDEN)
    done = run(stubs, "deploy.sh", *BASE, "-l", "swedencentral", "--infra-only")
    assert done.returncode != 0 and "cannot read resource group" in done.stderr
    assert not any(c["args"][:2] == ["group", "create"] for c in stubs.calls())
    assert not deployed(stubs)


def test_a_routine_deployment_keeps_the_pinned_key_and_passes_every_option(stubs: Stubs) -> None:
    deployed_registry(stubs, pinned=OLD_VERSION, latest=NEW_VERSION)
    done = run(
        stubs,
        "deploy.sh",
        *BASE,
        "--infra-only",
        "--alert-email",
        "ops@example.com",
        "--storage-sku",
        "Standard_ZRS",
        "--max-instances",
        "60",
        "--always-ready",
        "1",
        "--private-network",
    )
    assert done.returncode == 0, done.stderr
    values = deployment_parameters(stubs)
    assert values["sealingKey"] == "" and values["sealingKeyVersion"] == OLD_VERSION
    assert values["previousSealingKeyVersion"] == ""
    assert values["alertEmail"] == "ops@example.com" and values["storageSku"] == "Standard_ZRS"
    assert values["maximumInstanceCount"] == "60" and values["httpAlwaysReadyInstances"] == "1"
    assert values["privateNetworking"] == "true" and values["protectFromDeletion"] == "true"
    assert values["entraClientId"] == CLIENT_ID


def test_the_first_deployment_creates_the_group_and_passes_a_new_key_only_in_a_file(stubs: Stubs) -> None:
    empty_group(stubs)
    stubs.add(
        "az",
        Rule(["group", "create"]),
        Rule(["deployment", "group", "create"]),
        Rule(["resource", "list", "Microsoft.Web/sites"], stdout=[{"name": "func-registry-abc", "id": "/x"}]),
        Rule(["functionapp", "show"], stdout={"defaultHostName": "func-registry-abc.azurewebsites.net"}),
    )
    done = run(stubs, "deploy.sh", *BASE, "-l", "swedencentral", "--infra-only")
    assert done.returncode == 0, done.stderr
    values = deployment_parameters(stubs)
    key = values["sealingKey"]
    assert len(key) == 44
    every_argument = " ".join(" ".join(c["args"]) for c in stubs.calls())
    assert key not in every_argument, "the key must never be a command-line argument"
    assert key not in done.stdout + done.stderr


def test_what_if_previews_with_read_only_validation_and_applies_nothing(stubs: Stubs) -> None:
    deployed_registry(stubs)
    done = run(stubs, "deploy.sh", *BASE, "--what-if")
    assert done.returncode == 0, done.stderr
    what_if = next(c["args"] for c in stubs.calls() if c["args"][:3] == ["deployment", "group", "what-if"])
    assert what_if[what_if.index("--validation-level") + 1] == "ProviderNoRbac"
    assert not deployed(stubs)


def test_a_code_deployment_that_hangs_is_stopped_with_what_to_do(stubs: Stubs, tmp_path: Path) -> None:
    deployed_registry(stubs)
    stubs.add("az", Rule(["functionapp", "deployment", "source", "config-zip"], sleep=30))
    package = tmp_path / "registry-old.zip"
    with zipfile.ZipFile(package, "w") as archive:
        archive.writestr("function_app.py", "")
    done = run(stubs, "deploy.sh", *BASE, "--code-only", "--package", str(package), "--deploy-timeout", "2")
    assert done.returncode != 0
    assert "did not finish within 2 s" in done.stderr and "az functionapp log deployment show" in done.stderr
    deploy_call = next(c["args"] for c in stubs.calls() if "config-zip" in c["args"])
    assert deploy_call[deploy_call.index("--src") + 1] == str(package)  # the given package: a rollback
    assert not deployed(stubs)  # code only


# --- rotation --------------------------------------------------------------------------------------


def test_a_rotation_begins_with_a_new_key_and_the_old_version_still_readable(stubs: Stubs) -> None:
    deployed_registry(stubs, pinned=OLD_VERSION)
    done = run(stubs, "rotate-sealing-key.sh", "begin", *BASE)
    assert done.returncode == 0, done.stderr
    values = deployment_parameters(stubs)
    assert len(values["sealingKey"]) == 44 and values["previousSealingKeyVersion"] == OLD_VERSION
    assert not any("config-zip" in c["args"] for c in stubs.calls()), "begin deploys the infrastructure only"


def test_finishing_a_rotation_needs_the_reseal_confirmed_and_touches_nothing_otherwise(stubs: Stubs) -> None:
    deployed_registry(stubs, pinned=NEW_VERSION, previous=OLD_VERSION)
    done = run(stubs, "rotate-sealing-key.sh", "finish", *BASE)
    assert done.returncode != 0 and "--confirm-resealed" in done.stderr
    assert stubs.calls() == []
    done = run(stubs, "rotate-sealing-key.sh", "finish", *BASE, "--confirm-resealed")
    assert done.returncode == 0, done.stderr
    values = deployment_parameters(stubs)
    assert values["sealingKeyVersion"] == NEW_VERSION and values["previousSealingKeyVersion"] == ""
    assert values["sealingKey"] == ""


def test_reseal_runs_the_app_command_with_both_keys_resolved_and_prints_neither(
    stubs: Stubs, tmp_path: Path
) -> None:
    deployed_registry(
        stubs,
        pinned=NEW_VERSION,
        previous=OLD_VERSION,
        extra_settings={
            "AzureWebJobsStorage__clientId": "app-identity",
            "ServiceBusConnection__credential": "managedidentity",
        },
    )
    current, previous = (
        "Q1VSUkVOVC1LRVktMzItQllURVMtMDAwMDAwMDAwMDA=",
        "UFJFVklPVVMtS0VZLTMyLUJZVEVTLTAwMDAwMDAwMDA=",
    )
    uri = "https://kv-registry-abc123def4.vault.azure.net/secrets/registry-sealing-key/"
    stubs.add(
        "az",
        Rule(["keyvault", "secret", "show", "--id", uri + NEW_VERSION], stdout={"value": current}),
        Rule(["keyvault", "secret", "show", "--id", uri + OLD_VERSION], stdout={"value": previous}),
    )
    seen = tmp_path / "env.json"
    python = tmp_path / "python"
    python.write_text(f'#!/bin/sh\nenv > {seen}\necho "ARGS=$*" >> {seen}\necho resealed 3 values\n')
    python.chmod(0o755)
    done = run(
        stubs, "rotate-sealing-key.sh", "reseal", "-s", SUBSCRIPTION, "-g", GROUP, REGISTRY_PYTHON=str(python)
    )
    assert done.returncode == 0, done.stderr
    env = dict(line.split("=", 1) for line in seen.read_text().splitlines() if "=" in line)
    assert env["REGISTRY_SEALING_KEY"] == current and env["REGISTRY_SEALING_PREVIOUS_KEYS"] == previous
    assert env["AzureWebJobsStorage__accountName"] == "stregistry"
    assert "AzureWebJobsStorage__clientId" not in env and "ServiceBusConnection__credential" not in env
    # Nothing local may stand in for Azure: no connection string, no local.settings.json.
    assert env["AzureWebJobsStorage"] == "" and env["ServiceBusConnection"] == ""
    command = env["ARGS"].split()
    assert command[:3] == ["-m", "registry", "reseal"] and command[3] == "--settings"
    assert not Path(command[4]).exists()
    assert current not in done.stdout + done.stderr and previous not in done.stdout + done.stderr


def test_reseal_without_a_rotation_in_progress_does_nothing(stubs: Stubs, tmp_path: Path) -> None:
    deployed_registry(stubs, pinned=OLD_VERSION)
    python = tmp_path / "python"
    python.write_text(f"#!/bin/sh\ntouch {tmp_path / 'ran'}\n")
    python.chmod(0o755)
    done = run(
        stubs, "rotate-sealing-key.sh", "reseal", "-s", SUBSCRIPTION, "-g", GROUP, REGISTRY_PYTHON=str(python)
    )
    assert done.returncode != 0 and "no rotation in progress" in done.stderr
    assert not (tmp_path / "ran").exists()


# --- azd hooks ---------------------------------------------------------------------------------------


@pytest.fixture
def azd_project(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    (project / ".azure" / "dev").mkdir(parents=True)
    (project / ".azure" / "dev" / ".env").write_text(
        'AZURE_ENV_NAME="dev"\nREGISTRY_NEW_SEALING_KEY="old-key"\n'
    )
    return project


def azd_env(stubs: Stubs) -> dict[str, str]:
    return {
        "AZURE_ENV_NAME": "dev",
        "AZURE_SUBSCRIPTION_ID": SUBSCRIPTION,
        "AZURE_RESOURCE_GROUP": GROUP,
        "REGISTRY_ENTRA_CLIENT_ID": CLIENT_ID,
    }


def azd_sets(stubs: Stubs) -> dict[str, str]:
    return {c["args"][2]: c["args"][3] for c in stubs.calls("azd") if c["args"][:2] == ["env", "set"]}


def test_preprovision_passes_the_pinned_versions_and_no_key_for_a_deployed_registry(
    stubs: Stubs, azd_project: Path
) -> None:
    deployed_registry(stubs, pinned=NEW_VERSION, previous=OLD_VERSION)
    stubs.add("azd", Rule(["env", "set"]))
    done = run(stubs, "scripts/azd-preprovision.sh", cwd=azd_project, **azd_env(stubs))
    assert done.returncode == 0, done.stderr
    sets = azd_sets(stubs)
    assert sets["REGISTRY_SEALING_KEY_VERSION"] == NEW_VERSION
    assert sets["REGISTRY_SEALING_PREVIOUS_KEY_VERSION"] == OLD_VERSION
    assert sets["REGISTRY_NEW_SEALING_KEY"] == "", "a key left by an earlier run is cleared, none set"
    assert "REGISTRY_NEW_SEALING_KEY" not in (azd_project / ".azure/dev/.env").read_text()


def test_preprovision_hands_a_new_key_only_to_the_first_deployment(stubs: Stubs, azd_project: Path) -> None:
    empty_group(stubs)
    stubs.add("azd", Rule(["env", "set"]))
    done = run(stubs, "scripts/azd-preprovision.sh", cwd=azd_project, **azd_env(stubs))
    assert done.returncode == 0, done.stderr
    assert len([c for c in stubs.calls("azd") if c["args"][2:4] == ["REGISTRY_NEW_SEALING_KEY", ""]]) == 1
    keys = [
        c["args"][3]
        for c in stubs.calls("azd")
        if c["args"][2] == "REGISTRY_NEW_SEALING_KEY" and c["args"][3]
    ]
    assert len(keys) == 1 and len(keys[0]) == 44


def test_preprovision_fails_closed_and_sets_no_key(stubs: Stubs, azd_project: Path) -> None:
    deployed_registry(stubs)
    stubs.fail("resource", "show", "secrets", stderr=FORBIDDEN)
    stubs.add("azd", Rule(["env", "set"]))
    done = run(stubs, "scripts/azd-preprovision.sh", cwd=azd_project, **azd_env(stubs))
    assert done.returncode != 0 and "not allowed (403)" in done.stderr
    assert not [c for c in stubs.calls("azd") if c["args"][2] == "REGISTRY_NEW_SEALING_KEY" and c["args"][3]]
    assert not [c for c in stubs.calls("azd") if c["args"][2] == "REGISTRY_SEALING_KEY_VERSION"]


def test_postprovision_removes_the_new_key_from_the_azd_environment(stubs: Stubs, azd_project: Path) -> None:
    stubs.add("azd", Rule(["env", "set"], exit=1, stderr="empty values are not allowed\n"))
    done = run(stubs, "scripts/azd-postprovision.sh", cwd=azd_project, **azd_env(stubs))
    assert done.returncode == 0, done.stderr
    assert (azd_project / ".azure/dev/.env").read_text() == 'AZURE_ENV_NAME="dev"\n'
