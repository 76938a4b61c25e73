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
    excluded_roots = {
        "tests",
        "infra",
        "devhost",
        "bench",
        "examples",
        ".venv",
        "node_modules",
        ".git",
        "dist",
    }
    assert not {n for n in names if n.split("/")[0] in excluded_roots}
    assert not {n for n in names if "__pycache__" in n or n.endswith(".pyc")}
    dev_files = {"local.settings.json", "local.settings.sample.json", "requirements-dev.txt", "Makefile"}
    assert not names & dev_files
    assert all(info.date_time == (1980, 1, 1, 0, 0, 0) for info in zipfile.ZipFile(out).infolist())


SECRET_BEARING = [
    ".azure/prod/.env",
    ".azure/config.json",
    ".env",
    ".env.local",
    "registry/.env",
    "local.settings.json",
    "registry/local.settings.json",
    ".python_packages/lib/site-packages/x.py",
    ".git/config",
]


@pytest.mark.parametrize(
    "funcignore",
    [
        "",  # no rules at all
        "tests\n!.azure\n!.env\n!local.settings.json\n!.python_packages\n",  # re-included on purpose
    ],
    ids=["empty-funcignore", "funcignore-re-includes-them"],
)
def test_the_package_never_holds_azd_environments_env_files_local_settings_or_packages(
    tmp_path: Path, funcignore: str
) -> None:
    root = tmp_path / "copy"
    for rel in ("function_app.py", "host.json", "requirements.txt", "registry/__init__.py"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes((ROOT / rel).read_bytes())
    for rel in SECRET_BEARING:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("REGISTRY_NEW_SEALING_KEY=c2VjcmV0\n")
    (root / ".funcignore").write_text(funcignore)
    out = tmp_path / "app.zip"
    names = set(package.write_zip(out, root))
    assert names == set(zipfile.ZipFile(out).namelist())
    assert {"function_app.py", "host.json", "requirements.txt", "registry/__init__.py"} <= names
    assert names & set(SECRET_BEARING) == set()
    listed = subprocess.run(
        [sys.executable, str(INFRA / "package.py"), "--root", str(root), "--list"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert set(listed) == names


def test_git_and_func_ignore_list_what_must_never_be_committed_or_shipped() -> None:
    gitignore = (ROOT / ".gitignore").read_text().split()
    funcignore = (ROOT / ".funcignore").read_text().split()
    for entry in (".azure", ".env", "local.settings.json", ".python_packages", "dist"):
        assert any(line.rstrip("/").rstrip("*").rstrip(".") == entry for line in gitignore), entry
        assert any(line.rstrip("/").rstrip("*").rstrip(".") == entry for line in funcignore), entry


SCRIPTS = [
    "deploy.sh",
    "rotate-sealing-key.sh",
    "scripts/azd-preprovision.sh",
    "scripts/azd-postprovision.sh",
    "scripts/azd-postdeploy.sh",
]


@pytest.mark.parametrize("script", SCRIPTS)
def test_scripts_are_valid_bash(script: str) -> None:
    path = INFRA / script
    assert path.read_text().startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in path.read_text()
    assert path.stat().st_mode & 0o111, f"{script} is not executable"
    done = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


def test_deploy_help_runs_without_azure() -> None:
    done = subprocess.run(
        ["bash", str(INFRA / "deploy.sh"), "--help"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0
    for option in (
        "--what-if",
        "--subscription",
        "--package",
        "--code-only",
        "--alert-email",
        "--private-network",
    ):
        assert option in done.stdout


def test_azure_yaml_deploys_the_function_app_from_infra_with_its_hooks() -> None:
    text = (ROOT / "azure.yaml").read_text()
    for line in ("provider: bicep", "path: infra", "language: python", "host: function", "project: ."):
        assert line in text
    for hook in ("azd-preprovision.sh", "azd-postprovision.sh", "azd-postdeploy.sh"):
        assert f"./infra/scripts/{hook}" in text
        assert (INFRA / "scripts" / hook).exists()
