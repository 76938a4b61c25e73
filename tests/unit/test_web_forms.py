"""The register form: fields to the PUT body, and the service's errors back beside their fields."""

from __future__ import annotations

import pytest

from registry.identity import Principal
from registry.services.registration import register
from registry.validation import InvalidRequest
from registry.web.forms import RegisterForm
from tests.builders import make_deps, source_url

FORM = {
    "name": "m",
    "version": "1",
    "type": "DECODER",
    "description": "d",
    "private": "true",
    "entry_script": "score.py",
    "conda_env": "env.yml",
    "input_languages": "python, en",
    "input_description": "in",
    "output_languages": "",
    "output_description": "out",
    "num_params": "12",
    "index_page_file": "index.md",
}


def parse(**changes: str) -> RegisterForm:
    single = FORM | changes
    multi = {key: [value] for key, value in single.items()} | {
        "file_name": ["score.py", "env.yml", "index.md", ""],
        "file_url": [source_url("score.py"), source_url("env.yml"), source_url("index.md"), ""],
        "input_types": ["SOURCE_CODE", "NATURAL_LANGUAGE"],
        "output_types": ["OTHER"],
    }
    return RegisterForm.parse(single, multi)


def test_the_form_becomes_the_put_body_with_empty_fields_left_out() -> None:
    body = parse().body()
    assert body["model_config"] == {
        "type": "DECODER",
        "private": True,
        "description": "d",
        "inference_properties": {"entry_script": "score.py", "conda_env": "env.yml"},
    }
    assert list(body["model_files"]) == ["score.py", "env.yml", "index.md"]
    assert body["model_metainfo"] == {
        "input_description": "in",
        "output_description": "out",
        "index_page_file": "index.md",
        "input_types": ["SOURCE_CODE", "NATURAL_LANGUAGE"],
        "input_languages": ["python", "en"],
        "output_types": ["OTHER"],
        "num_params": 12,
    }
    assert parse(private="").body()["model_config"]["private"] is False


def register_errors(form: RegisterForm) -> list[tuple[str, str]]:
    with pytest.raises(InvalidRequest) as raised:
        register(
            make_deps(), Principal("alice", "alice"), form.values["name"], form.values["version"], form.body()
        )
    return [(e.field, e.rule) for e in raised.value.errors]


def test_each_error_of_the_service_lands_beside_the_field_that_holds_it() -> None:
    form = parse(num_params="many", input_languages="")
    form.files[1] = ("env.yml", "ftp://example.org/env.yml")
    errors = register_errors(form)
    fields = {field for field, _ in errors}
    assert {"model_metainfo.num_params", "model_metainfo.input_languages"} <= fields
    assert any(field.startswith("model_files[") for field in fields)

    form.add_errors(errors)

    assert set(form.errors) >= {"num_params", "input_languages", "file_url_1"}
    assert form.general == []
    rules = dict(errors)
    assert form.errors["num_params"] == [rules["model_metainfo.num_params"]]


def test_a_bad_name_is_shown_beside_the_name() -> None:
    form = parse(name="status")
    form.add_errors(register_errors(form))
    assert list(form.errors) == ["name"]


def test_an_error_no_field_holds_is_kept_for_the_summary() -> None:
    form = parse()
    form.add_errors(
        [("private_packages[0]", "must be https"), ("model_files", "at least one file is required")]
    )
    assert form.general == ["private_packages[0]: must be https"]
    assert form.errors == {"files": ["at least one file is required"]}
