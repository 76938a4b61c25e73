"""The CLI's choices are the registry's vocabulary (registry.domain.vocabulary), never a copy of it."""

from __future__ import annotations

import ast
import subprocess
import sys
from enum import StrEnum

import click

from devhost.azurite import REPO
from registry.cli.app import cli
from registry.domain.vocabulary import DataType, ModelType, State

# Each option that takes a word of the vocabulary, in whichever command has it.
VOCABULARY_OPTIONS: dict[str, type[StrEnum]] = {
    "--type": ModelType,
    "--input-type": DataType,
    "--output-type": DataType,
}


def _choice_options() -> list[tuple[str, str, click.Choice[str]]]:
    found = []
    for name, command in cli.commands.items():
        for param in command.params:
            if isinstance(param, click.Option) and isinstance(param.type, click.Choice):
                for flag in param.opts:
                    found.append((name, flag, param.type))
    return found


def test_every_type_option_offers_exactly_the_vocabulary_enums_values() -> None:
    checked = {
        (command, flag): tuple(choice.choices)
        for command, flag, choice in _choice_options()
        if flag in VOCABULARY_OPTIONS
    }
    assert {command for command, _ in checked} >= {"register", "ls"}
    assert len(checked) >= 6  # register and ls: --type, --input-type, --output-type
    for (command, flag), choices in checked.items():
        assert choices == tuple(member.value for member in VOCABULARY_OPTIONS[flag]), (command, flag)


def _literals(path: str) -> set[str]:
    return {
        node.value
        for node in ast.walk(ast.parse((REPO / path).read_text()))
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    }


def test_no_cli_module_spells_out_a_word_of_the_vocabulary() -> None:
    # A copied list would drift when the registry's vocabulary changes: derive it instead.
    words = {member.value for enum in (ModelType, DataType, State) for member in enum}
    copies = {
        path.relative_to(REPO).as_posix(): sorted(words & _literals(str(path.relative_to(REPO))))
        for path in (REPO / "registry" / "cli").rglob("*.py")
    }
    assert {path: found for path, found in copies.items() if found} == {}


def test_the_vocabulary_module_imports_nothing_beyond_the_standard_library() -> None:
    # `pip install .[cli]` has no Functions runtime (nor any other app dependency): the CLI may import
    # registry.domain.vocabulary only while it stays this light.
    probe = (
        "import sys\n"
        "before = set(sys.modules)\n"
        "import registry.domain.vocabulary\n"
        "new = sorted(m.split('.')[0] for m in set(sys.modules) - before)\n"
        "print(sorted(set(new) - set(sys.stdlib_module_names) - {'registry'}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=False, cwd=REPO
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
