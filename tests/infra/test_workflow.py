"""The deployment pipeline, .github/workflows/deploy.yml: OIDC and no stored secrets, what-if on pull
requests, deploy on main through the protected environment with a pinned Azure CLI, versioned
packages, the smoke check. (`make lint` runs actionlint on it as well.)"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.infra import INFRA, ROOT

WORKFLOW = ROOT / ".github" / "workflows" / "deploy.yml"


@pytest.fixture(scope="module")
def workflow() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(WORKFLOW.read_text())
    return loaded


def steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = job["steps"]
    return found


def test_no_stored_secrets_and_an_oidc_token_only_where_azure_is_used(workflow: dict[str, Any]) -> None:
    assert "secrets." not in WORKFLOW.read_text()
    assert workflow["permissions"] == {"contents": "read"}
    for name, job in workflow["jobs"].items():
        logs_in = any(str(s.get("uses", "")).startswith("azure/login@") for s in steps(job))
        assert (job.get("permissions", {}).get("id-token") == "write") == logs_in, name
        for step in steps(job):
            if str(step.get("uses", "")).startswith("azure/login@"):
                assert set(step["with"]) == {
                    "client-id",
                    "tenant-id",
                    "subscription-id",
                }  # federated: no secret


def test_pull_requests_get_a_what_if_and_never_a_deployment(workflow: dict[str, Any]) -> None:
    what_if = workflow["jobs"]["what-if"]
    assert "pull_request" in what_if["if"]
    assert any(
        "deploy.sh --what-if" in str(s.get("with", {}).get("inlineScript", "")) for s in steps(what_if)
    )
    deploy = workflow["jobs"]["deploy"]
    assert "refs/heads/main" in deploy["if"] and "pull_request" not in deploy["if"]


def test_main_deploys_the_built_package_through_the_protected_environment_with_the_smoke_check(
    workflow: dict[str, Any],
) -> None:
    deploy = workflow["jobs"]["deploy"]
    assert deploy["environment"] == "production" and deploy["needs"] == "package"
    script = next(s["with"]["inlineScript"] for s in steps(deploy) if "inlineScript" in s.get("with", {}))
    assert 'deploy.sh --package "dist/registry-${GITHUB_SHA}.zip"' in script
    assert "--infra-only" not in script and "--what-if" not in script  # so the smoke check runs
    upload = next(s for s in steps(workflow["jobs"]["package"]) if "upload-artifact" in s.get("uses", ""))
    assert upload["with"]["name"] == "registry-${{ github.sha }}" and upload["with"]["retention-days"] >= 30


def test_the_azure_cli_is_pinned_at_or_above_what_deploy_sh_requires(workflow: dict[str, Any]) -> None:
    pinned = workflow["env"]["AZ_CLI_VERSION"]
    required = re.search(r"^min_az_version=(\S+)$", (INFRA / "deploy.sh").read_text(), re.MULTILINE)
    assert required is not None

    def version(text: str) -> tuple[int, ...]:
        return tuple(int(p) for p in text.split("."))

    assert re.fullmatch(r"\d+\.\d+\.\d+", pinned) and version(pinned) >= version(required[1])
    for job in ("what-if", "deploy"):
        cli = [s for s in steps(workflow["jobs"][job]) if str(s.get("uses", "")).startswith("azure/cli@")]
        assert cli and all(s["with"]["azcliversion"] == "${{ env.AZ_CLI_VERSION }}" for s in cli)


def test_every_action_is_pinned_to_a_commit(workflow: dict[str, Any]) -> None:
    for job in workflow["jobs"].values():
        for step in steps(job):
            if "uses" in step:
                assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", step["uses"]), step["uses"]


def test_actionlint_passes_and_runs_in_make_lint() -> None:
    actionlint = Path(ROOT / ".venv" / "bin" / "actionlint")
    done = subprocess.run([str(actionlint), str(WORKFLOW)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    lint = (ROOT / "Makefile").read_text().split("\nlint:")[1].split("\n\n")[0]
    assert "actionlint" in lint
