"""The CLI installs on its own: pinned [cli] extra, a console script, no Functions runtime, not deployed.

`make cli-install-check` does the real thing (a fresh venv with only `pip install .[cli]`); it needs
PyPI and takes tens of seconds, so it is a scripted check rather than a test.
"""

from __future__ import annotations

import ast
import importlib.metadata
import importlib.util
import re
import subprocess
import sys
import tomllib
from pathlib import Path

from devhost.azurite import REPO

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())


def pins(text: str) -> dict[str, str]:
    found = {}
    for line in text.splitlines():
        match = re.match(r"^([A-Za-z0-9_.\-]+)==([^\s#]+)", line.strip())
        if match:
            found[match.group(1).lower().replace("_", "-")] = match.group(2)
    return found


def test_the_cli_extra_pins_the_same_versions_as_the_requirements_files() -> None:
    extra = pins(
        "\n".join(PYPROJECT["project"]["optional-dependencies"]["cli"] + PYPROJECT["project"]["dependencies"])
    )
    requirements = pins((REPO / "requirements.txt").read_text()) | pins(
        (REPO / "requirements-dev.txt").read_text()
    )
    assert {"click", "rich", "pyyaml", "httpx", "azure-identity", "azure-storage-blob", "pydantic"} <= set(
        extra
    )
    assert {name: requirements.get(name) for name in extra} == extra
    assert "-e .[cli]" in (REPO / "requirements-dev.txt").read_text().splitlines()
    assert not {"click", "rich", "pyyaml"} & set(
        pins((REPO / "requirements.txt").read_text())
    )  # not deployed


def test_the_registry_console_script_is_declared_and_installed_in_the_venv() -> None:
    assert PYPROJECT["project"]["scripts"] == {"registry": "registry.cli:run"}
    script = Path(sys.executable).parent / "registry"
    done = subprocess.run([str(script), "--version"], capture_output=True, text=True, check=False)
    assert done.returncode == 0 and "registry" in done.stdout


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_every_library_the_cli_imports_comes_with_the_cli_extra() -> None:
    # The CLI's own modules, and what its commands import: validation, verified downloads, the vocabulary.
    sources = [
        *(REPO / "registry" / "cli").rglob("*.py"),
        *(REPO / "registry" / name for name in ("validation.py", "download.py")),
        *(REPO / "registry" / "signing" / name for name in ("bundle.py", "keys.py")),
        *(REPO / "registry" / "domain" / name for name in ("__init__.py", "vocabulary.py")),
    ]
    modules = (
        set().union(*(_imports(p) for p in sources)) - set(sys.stdlib_module_names) - {"registry", "azure"}
    )
    distributions = importlib.metadata.packages_distributions()
    declared = {
        re.split(r"[=<>\[ ]", requirement)[0].lower()
        for requirement in PYPROJECT["project"]["optional-dependencies"]["cli"]
        + PYPROJECT["project"]["dependencies"]
    }
    assert {dist.lower() for module in modules for dist in distributions[module]} <= declared
    # azure is a namespace shared by many distributions: name the packages instead.
    azure = {
        name
        for p in sources
        for name in re.findall(r"^\s*from (azure\.[a-z_.]+) import", p.read_text(), re.M)
    }
    assert azure and all(
        name.startswith(("azure.core", "azure.identity", "azure.storage.blob")) for name in azure
    )
    assert {"azure-identity", "azure-storage-blob"} <= declared  # azure-core comes with both


def test_running_the_cli_never_imports_the_functions_app() -> None:
    probe = (
        "import sys\n"
        "from registry.cli.app import main\n"
        "code = main(['--help'])\n"
        "bad = sorted(m for m in sys.modules if m.startswith(('azure.functions', 'registry.bootstrap', "
        "'registry.blueprints', 'registry.adapters', 'registry.services')))\n"
        "print(code, bad)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=False, cwd=REPO
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "0 []"


def test_the_deployed_package_leaves_the_cli_and_its_install_metadata_out() -> None:
    spec = importlib.util.spec_from_file_location("infra_package", REPO / "infra" / "package.py")
    assert spec is not None and spec.loader is not None
    package = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = package
    spec.loader.exec_module(package)
    files = {str(f) for f in package.package_files(REPO)}
    assert "registry/validation.py" in files and "registry/__main__.py" in files
    assert not {
        f for f in files if f.startswith("registry/cli/") or ".egg-info" in f or f.startswith("build/")
    }
