"""Every Bicep file in infra/ parses with pycep-parser (the parser checkov uses for Bicep)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pycep import BicepParser

from tests.infra import INFRA, bicep_files, config, parse


def test_the_expected_files_are_there() -> None:
    names = {p.relative_to(INFRA).as_posix() for p in bicep_files()}
    assert {"main.bicep", "modules/functionapp.bicep", "modules/storage.bicep"} <= names


@pytest.mark.parametrize("path", bicep_files(), ids=lambda p: p.relative_to(INFRA).as_posix())
def test_bicep_file_parses(path: Path) -> None:
    tree = BicepParser().parse(file_path=path)
    assert tree.get("resources") or tree.get("modules"), f"{path.name} declares nothing"


def test_modules_exist_and_take_only_declared_parameters() -> None:
    """Bicep would reject a module call with an unknown parameter or a missing required one."""
    for caller in bicep_files():
        for name, module in parse(caller.relative_to(INFRA).as_posix()).get("modules", {}).items():
            target = (caller.parent / module["detail"]["path"]).resolve()
            assert target.is_file(), f"{caller.name}: module {name} -> {target} is missing"
            declared = parse(target.relative_to(INFRA).as_posix())["parameters"]
            given = set(config(module)["params"])
            assert given <= set(declared), f"{name}: unknown parameters {given - set(declared)}"
            required = {p for p, spec in declared.items() if spec["default"] is None}
            assert required <= given, f"{name}: missing required parameters {required - given}"


def test_parameters_file_matches_main() -> None:
    declared = parse("main.bicep")["parameters"]
    given = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    assert set(given) <= set(declared)
    required = {p for p, spec in declared.items() if spec["default"] is None}
    assert required <= set(given)
