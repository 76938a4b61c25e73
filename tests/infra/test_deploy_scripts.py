"""The deployment package honours .funcignore; the deploy scripts are valid bash; azd points at them."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import zipfile
from pathlib import Path
from types import ModuleType

import pytest

from tests.infra import INFRA, ROOT


def _package_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("infra_package", INFRA / "package.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


package = _package_module()


@pytest.mark.parametrize(
    ("path", "is_dir", "expected"),
    [
        ("tests", True, True),
        ("registry/tests", True, True),  # an unanchored name matches at any depth
        ("registry/__pycache__", True, True),
        ("registry/settings.pyc", False, True),
        (".gitignore", False, True),
        ("local.settings.json", False, True),
        ("registry/settings.py", False, False),
        ("host.json", False, False),
        ("logs/app.log", False, True),
        ("logs/keep.log", False, False),  # re-included by !
        ("build", False, False),  # build/ matches directories only
        ("build", True, True),
        ("docs/a/b.md", False, True),  # ** spans directories
        ("sub/docs/a.md", False, False),  # a pattern with / is anchored at the root
    ],
)
def test_funcignore_rules(path: str, is_dir: bool, expected: bool) -> None:
    rules = package.parse_rules(
        "# comment\n.git*\ntests\n__pycache__\n*.pyc\nlocal.settings.json\n"
        "*.log\n!keep.log\nbuild/\ndocs/**\n"
    )
    assert package.ignored(path, is_dir, rules) is expected


def test_package_holds_the_app_and_nothing_funcignore_excludes(tmp_path: Path) -> None:
    out = tmp_path / "app.zip"
    package.write_zip(out, ROOT)
    names = set(zipfile.ZipFile(out).namelist())
    assert {"function_app.py", "host.json", "requirements.txt", "registry/settings.py"} <= names
    excluded_roots = {"tests", "infra", "devhost", "bench", "examples", ".venv", "node_modules", ".git"}
    assert not {n for n in names if n.split("/")[0] in excluded_roots}
    assert not {n for n in names if "__pycache__" in n or n.endswith(".pyc")}
    dev_files = {"local.settings.json", "local.settings.sample.json", "requirements-dev.txt", "Makefile"}
    assert not names & dev_files
    assert all(info.date_time == (1980, 1, 1, 0, 0, 0) for info in zipfile.ZipFile(out).infolist())


@pytest.mark.parametrize("script", ["deploy.sh", "scripts/sealing-key.sh", "scripts/azd-preprovision.sh"])
def test_scripts_are_valid_bash(script: str) -> None:
    path = INFRA / script
    assert path.read_text().startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in path.read_text()
    done = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


def test_deploy_help_runs_without_azure() -> None:
    done = subprocess.run(
        ["bash", str(INFRA / "deploy.sh"), "--help"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0 and "--what-if" in done.stdout


def test_azure_yaml_deploys_the_function_app_from_infra() -> None:
    text = (ROOT / "azure.yaml").read_text()
    for line in ("provider: bicep", "path: infra", "language: python", "host: function", "project: ."):
        assert line in text
    assert (ROOT / "infra/scripts/azd-preprovision.sh").exists()
