"""Unit tests: a model folder, model.yaml and the flags made into the body, and the API's own checks of it."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import pytest
import yaml

from registry.cli.commands.register import register
from registry.cli.errors import USAGE, CliError, UsageProblem
from registry.cli.modelspec import (
    check_body,
    check_context,
    folder_files,
    model_document,
    parse_assignment,
    read_model_yaml,
    registration_body,
)
from tests.cli.conftest import MODEL_YAML, SMALL_FILES, model_folder

NO_FLAGS: dict[str, Any] = {}


def good_body(folder: Path) -> dict[str, Any]:
    document = model_document(read_model_yaml(folder / "model.yaml"), NO_FLAGS)
    urls = {
        f.target: f"https://owner.blob.core.windows.net/models/m/1/{f.target}" for f in folder_files(folder)
    }
    return registration_body(document, urls)


def check(body: object) -> list[tuple[str, str]]:
    context = check_context(
        name="m",
        version="1",
        owner=("alice", "alice"),
        source_host="owner.blob.core.windows.net",
        insecure_sources=False,
    )
    found = check_body(body, context)
    return [(e.field, e.rule) for e in found]


def test_a_folders_files_are_named_by_their_relative_paths_without_model_yaml_or_hidden_files(
    tmp_path: Path,
) -> None:
    folder = model_folder(tmp_path / "m", {"weights/a/b.bin": b"b", ".secret": b"s", ".git/config": b"c"})
    targets = [f.target for f in folder_files(folder)]
    assert targets == sorted([*SMALL_FILES, "weights/a/b.bin"])
    sizes = {f.target: f.size for f in folder_files(folder)}
    assert sizes["weights/a/b.bin"] == 1


def test_register_needs_a_folder(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(UsageProblem):
        folder_files(tmp_path / "file")


def test_flags_override_model_yaml_and_set_reaches_any_field(tmp_path: Path) -> None:
    document = model_document(
        yaml.safe_load(MODEL_YAML),
        {
            "model_type": "ENCODER",  # --type, as register passes it on
            "description": None,
            "input_types": ("SOURCE_CODE", "OTHER"),
            "output_languages": (),
        },
        ["model_config.training_properties.entry_script=train.py", "model_metainfo.num_params=5"],
    )
    assert document["model_config"]["type"] == "ENCODER"
    assert document["model_config"]["description"] == "Registered by the CLI tests"  # None changes nothing
    assert document["model_metainfo"]["input_types"] == ["SOURCE_CODE", "OTHER"]
    assert document["model_metainfo"]["output_languages"] == [
        "en"
    ]  # an empty repeatable flag changes nothing
    assert document["model_config"]["training_properties"] == {"entry_script": "train.py"}
    assert document["model_metainfo"]["num_params"] == 5  # a YAML value: an integer


def test_a_malformed_set_is_a_usage_error() -> None:
    with pytest.raises(UsageProblem) as refused:
        parse_assignment("model_config.type")
    assert refused.value.code == USAGE
    assert parse_assignment("a.b=") == (("a", "b"), "")


def test_model_yaml_with_an_unknown_key_or_broken_syntax_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "model.yaml"
    path.write_text("model_config: {}\nmodel_file: {}\n")
    with pytest.raises(CliError) as refused:
        read_model_yaml(path)
    assert refused.value.errors == [{"field": "model_file", "rule": "unknown field"}]
    path.write_text("model_config: [unclosed\n")
    with pytest.raises(CliError, match="not valid YAML"):
        read_model_yaml(path)
    assert read_model_yaml(tmp_path / "absent.yaml") == {}


def test_the_body_is_model_yaml_without_name_and_version_plus_the_folders_files(tmp_path: Path) -> None:
    folder = model_folder(tmp_path / "m", {"w.bin": b"w"})
    (folder / "model.yaml").write_text(MODEL_YAML + "name: m\nversion: '1'\n")
    body = good_body(folder)
    assert set(body) == {"model_config", "model_metainfo", "model_files"}
    assert set(body["model_files"]) == {*SMALL_FILES, "w.bin"}
    assert check(body) == []


def test_a_bad_body_is_reported_with_the_apis_own_fields_and_rules(tmp_path: Path) -> None:
    body = good_body(model_folder(tmp_path / "m", {}))
    body["model_config"]["type"] = "HUGE"
    del body["model_metainfo"]["num_params"]
    body["model_metainfo"]["index_page_file"] = "missing.md"
    problems = check(body)
    assert ("model_config.type", "Input should be 'ENCODER', 'DECODER' or 'SEQ2SEQ'") in problems
    assert ("model_metainfo.num_params", "field required") in problems
    assert ("model_metainfo.index_page_file", "index_page_file must be a key of model_files") in problems


def test_the_owner_rule_is_checked_against_the_caller(tmp_path: Path) -> None:
    body = good_body(model_folder(tmp_path / "m", {}))
    body["model_config"]["owner"] = "mallory"
    assert check(body) == [
        ("model_config.owner", "must be the caller (the owner is whoever registers the model)")
    ]


def register_flags(params: dict[str, Any]) -> dict[str, Any]:
    """What `register` passes on as **flags: every parsed option it does not name itself."""
    callback = register.callback
    assert callback is not None
    named = set(inspect.signature(callback).parameters) | {"api", "as_user", "client_id", "as_json"}
    return {key: value for key, value in params.items() if key not in named}


def test_every_setting_flag_of_register_puts_its_value_in_the_body(tmp_path: Path) -> None:
    """Each option that `register` passes on as **flags has its place (--type raised KeyError:
    register passes it on as model_type)."""
    ctx = register.make_context("register", [str(tmp_path), "--type", "ENCODER", "--num-params", "7"])
    assert model_document({}, register_flags(ctx.params)) == {
        "model_config": {"type": "ENCODER"},
        "model_metainfo": {"num_params": 7},
    }
