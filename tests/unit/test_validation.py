"""Every rule of issue 2's "Validation" section, each failure a 400 naming the field and the rule."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from registry.validation import (
    IDENTIFIER_RULE,
    FieldError,
    InvalidRequest,
    RegistrationRequest,
    RequestContext,
    UpdateRequest,
    parse_registration,
    parse_with,
    safe_key,
)
from tests.builders import DOCKER_PASSWORD, SAS, deepdev_example_body, registration_body, source_url

OWNER_ID = "00000000-0000-0000-0000-0000000000aa"
OWNER_NAME = "alice@example.com"
DEFAULT_HOSTS = ("*.blob.core.windows.net",)


def context(
    *,
    name: str = "codegen",
    version: str = "1.2.3",
    hosts: tuple[str, ...] = DEFAULT_HOSTS,
    insecure: bool = False,
) -> RequestContext:
    return RequestContext(
        name=name,
        version=version,
        owner_id=OWNER_ID,
        owner_name=OWNER_NAME,
        file_names=frozenset(),
        allowed_source_hosts=hosts,
        allow_insecure_sources=insecure,
    )


def parse(body: Any, **ctx: Any) -> RegistrationRequest:
    return parse_registration(body, context(**ctx))


def errors(body: Any, **ctx: Any) -> list[FieldError]:
    with pytest.raises(InvalidRequest) as raised:
        parse_registration(body, context(**ctx))
    assert raised.value.errors, "an InvalidRequest must name at least one violation"
    return raised.value.errors


def only_error(body: Any, **ctx: Any) -> FieldError:
    found = errors(body, **ctx)
    assert len(found) == 1, found
    return found[0]


def assert_error(found: list[FieldError], field: str, *rule_words: str) -> FieldError:
    """One of the errors is on `field` and its rule mentions every one of `rule_words`."""
    matches = [e for e in found if e.field == field]
    assert matches, f"no error on {field!r}: {found}"
    for e in matches:
        if all(word.lower() in e.rule.lower() for word in rule_words):
            return e
    raise AssertionError(f"no error on {field!r} mentions {rule_words}: {matches}")


def body_with(path: str, value: Any) -> dict[str, Any]:
    """A valid body with one value changed; `path` is dotted, e.g. 'model_config.type'."""
    body = registration_body()
    *parents, last = path.split(".")
    target = body
    for part in parents:
        target = target[part]
    target[last] = value
    return body


def body_without(path: str) -> dict[str, Any]:
    body = registration_body()
    *parents, last = path.split(".")
    target = body
    for part in parents:
        target = target[part]
    del target[last]
    return body


def with_files(body: dict[str, Any], *names: str) -> dict[str, Any]:
    for name in names:
        body["model_files"][name] = source_url(name.replace("/", "_"))
    return body


# --------------------------------------------------------------------------------------------
# The valid baseline and the DeepDev example
# --------------------------------------------------------------------------------------------


def test_baseline_body_is_valid() -> None:
    request = parse(registration_body())
    assert request.config.type == "DECODER"
    assert set(request.model_files) == {"score.py", "env.yml", "index.md", "weights/model.bin"}


def test_deepdev_example_payload_with_resolutions_is_accepted() -> None:
    request = parse(deepdev_example_body(), name="gptc", version="1.0")
    assert request.config.type == "ENCODER"
    assert request.config.private is True
    assert request.config.inference_properties.entry_script == "inference.py"
    assert request.config.inference_properties.conda_env == "inference.yml"
    assert request.config.training_properties is not None
    assert request.config.training_properties.args == {"--learning_rate": 0.001, "-v": ""}
    assert request.model_metainfo.input_languages == ["CSHARP"]
    assert request.model_metainfo.num_params == 50_000_000
    assert request.model_metainfo.index_page_file == "index.md"
    assert len(request.model_files) == 7
    assert request.private_packages is not None
    assert len(request.private_packages) == 1


# --------------------------------------------------------------------------------------------
# name and version (from the path)
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    ["1.2.3", "a", "A", "0", "model_name-v2.final", "x" * 128, "v1", "1_0-rc.2"],
)
@pytest.mark.parametrize("which", ["name", "version"])
def test_name_and_version_accept_identifiers(which: str, value: str) -> None:
    parse(registration_body(), **{which: value})


@pytest.mark.parametrize(
    "value",
    [
        "",
        "x" * 129,
        ".hidden",
        "-dash",
        "_under",
        "has space",
        "a/b",
        "a:b",
        "é",
        "naïve",
        "a\nb",
        "a?b",
        "a#b",
    ],
)
@pytest.mark.parametrize("which", ["name", "version"])
def test_name_and_version_refuse_anything_else(which: str, value: str) -> None:
    error = only_error(registration_body(), **{which: value})
    assert error == FieldError(which, IDENTIFIER_RULE)


def test_bad_name_and_version_are_reported_together() -> None:
    found = errors(registration_body(), name="-x", version="")
    assert {e.field for e in found} == {"name", "version"}


# --------------------------------------------------------------------------------------------
# model_config
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("model_type", ["ENCODER", "DECODER", "SEQ2SEQ"])
def test_model_type_accepts_each_enum_value(model_type: str) -> None:
    assert parse(body_with("model_config.type", model_type)).config.type == model_type


@pytest.mark.parametrize("model_type", ["encoder", "TRANSFORMER", "", 1, None])
def test_model_type_refuses_values_outside_the_enum(model_type: Any) -> None:
    error = only_error(body_with("model_config.type", model_type))
    assert error.field == "model_config.type"
    assert "ENCODER" in error.rule
    assert "DECODER" in error.rule
    assert "SEQ2SEQ" in error.rule


def test_model_type_is_required() -> None:
    assert only_error(body_without("model_config.type")) == FieldError("model_config.type", "field required")


def test_description_defaults_to_empty_string() -> None:
    assert parse(body_without("model_config.description")).config.description == ""


def test_description_must_be_a_string() -> None:
    assert_error(errors(body_with("model_config.description", 5)), "model_config.description", "string")


def test_private_defaults_to_true() -> None:
    assert parse(registration_body()).config.private is True


def test_private_can_be_false() -> None:
    assert parse(body_with("model_config.private", False)).config.private is False


@pytest.mark.parametrize("value", ["false", 0, None])
def test_private_must_be_a_boolean(value: Any) -> None:
    assert_error(errors(body_with("model_config.private", value)), "model_config.private", "boolean")


@pytest.mark.parametrize(("field", "value"), [("name", "codegen"), ("version", "1.2.3")])
def test_config_name_and_version_matching_the_path_are_accepted(field: str, value: str) -> None:
    parse(body_with(f"model_config.{field}", value))


@pytest.mark.parametrize(("field", "value"), [("name", "other"), ("version", "1.2.4")])
def test_config_name_and_version_must_match_the_path(field: str, value: str) -> None:
    error = only_error(body_with(f"model_config.{field}", value))
    assert error.field == f"model_config.{field}"
    assert "path" in error.rule


@pytest.mark.parametrize("owner", [OWNER_ID, OWNER_NAME])
def test_config_owner_may_name_the_caller_by_id_or_name(owner: str) -> None:
    parse(body_with("model_config.owner", owner))


def test_config_owner_must_be_the_caller() -> None:
    error = only_error(body_with("model_config.owner", "mallory"))
    assert error.field == "model_config.owner"
    assert "caller" in error.rule


def test_inference_properties_are_required() -> None:
    error = only_error(body_without("model_config.inference_properties"))
    assert error == FieldError("model_config.inference_properties", "field required")


# --------------------------------------------------------------------------------------------
# inference_properties and training_properties
# --------------------------------------------------------------------------------------------

INFERENCE = "model_config.inference_properties"


def test_entry_script_is_required() -> None:
    assert only_error(body_without(f"{INFERENCE}.entry_script")) == FieldError(
        f"{INFERENCE}.entry_script", "field required"
    )


@pytest.mark.parametrize("script", ["score.yml", "score", "score.pyc", "index.md"])
def test_entry_script_must_be_a_py_file(script: str) -> None:
    body = with_files(body_with(f"{INFERENCE}.entry_script", script), script)
    assert_error(errors(body), f"{INFERENCE}.entry_script", ".py")


def test_entry_script_must_be_a_key_of_model_files() -> None:
    error = only_error(body_with(f"{INFERENCE}.entry_script", "missing.py"))
    assert error.field == f"{INFERENCE}.entry_script"
    assert "key of model_files" in error.rule


@pytest.mark.parametrize("script", ["my-score.py", "1score.py", "class.py", "sc ore.py", "src/my.score.py"])
def test_entry_script_stem_must_be_a_python_module_name(script: str) -> None:
    body = with_files(body_with(f"{INFERENCE}.entry_script", script), script)
    assert_error(errors(body), f"{INFERENCE}.entry_script", "python module")


@pytest.mark.parametrize("script", ["entry.py", "src/entry.py"])
def test_entry_script_must_not_be_named_entry(script: str) -> None:
    body = with_files(body_with(f"{INFERENCE}.entry_script", script), script)
    assert_error(errors(body), f"{INFERENCE}.entry_script", "entry")


@pytest.mark.parametrize("script", ["src/score.py", "Score.py", "_private_score.py", "entry_point.py"])
def test_entry_script_in_a_folder_or_with_other_valid_module_names_is_accepted(script: str) -> None:
    parse(with_files(body_with(f"{INFERENCE}.entry_script", script), script))


@pytest.mark.parametrize("env", ["env.yml", "conda/env.yaml", "ENV.YML"])
def test_conda_env_accepts_yml_and_yaml_keys(env: str) -> None:
    parse(with_files(body_with(f"{INFERENCE}.conda_env", env), env))


def test_conda_env_must_be_a_yml_or_yaml_file() -> None:
    body = with_files(body_with(f"{INFERENCE}.conda_env", "env.txt"), "env.txt")
    assert_error(errors(body), f"{INFERENCE}.conda_env", ".yml", ".yaml")


def test_conda_env_must_be_a_key_of_model_files() -> None:
    assert_error(
        errors(body_with(f"{INFERENCE}.conda_env", "other.yml")),
        f"{INFERENCE}.conda_env",
        "key of model_files",
    )


def test_docker_image_alone_is_enough() -> None:
    body = body_without(f"{INFERENCE}.conda_env")
    body["model_config"]["inference_properties"]["docker_image"] = "mcr.microsoft.com/azureml/base:latest"
    parse(body)


def test_conda_env_or_docker_image_is_required() -> None:
    error = only_error(body_without(f"{INFERENCE}.conda_env"))
    assert error.field == INFERENCE
    assert "conda_env" in error.rule
    assert "docker_image" in error.rule


def test_docker_registry_requires_docker_image() -> None:
    body = body_with(f"{INFERENCE}.docker_registry", {"url": "myregistry.azurecr.io"})
    assert_error(errors(body), f"{INFERENCE}.docker_registry", "docker_image")


def test_training_properties_are_optional() -> None:
    assert parse(registration_body()).config.training_properties is None


def training_body(**props: Any) -> dict[str, Any]:
    body = with_files(registration_body(), "train.py", "train.yml")
    body["model_config"]["training_properties"] = {
        "entry_script": "train.py",
        "conda_env": "train.yml",
        **props,
    }
    return body


TRAINING = "model_config.training_properties"


def test_training_properties_with_args_are_accepted() -> None:
    args = {"--learning_rate": 0.001, "-v": "", "--epochs": 3, "--fp16": True, "--seed": None}
    request = parse(training_body(args=args))
    assert request.config.training_properties is not None
    assert request.config.training_properties.args == args


def test_training_entry_script_is_required() -> None:
    body = training_body()
    del body["model_config"]["training_properties"]["entry_script"]
    assert only_error(body) == FieldError(f"{TRAINING}.entry_script", "field required")


@pytest.mark.parametrize(
    ("props", "rule_word"),
    [
        ({"entry_script": "missing.py"}, "key of model_files"),
        ({"entry_script": "train.yml"}, ".py"),
        ({"entry_script": "entry.py"}, "entry"),
        ({"conda_env": "train.py"}, ".yml"),
        ({"conda_env": "missing.yml"}, "key of model_files"),
    ],
)
def test_training_properties_follow_the_same_file_rules(props: dict[str, Any], rule_word: str) -> None:
    body = with_files(training_body(**props), "entry.py")
    field = f"{TRAINING}.{next(iter(props))}"
    assert_error(errors(body), field, rule_word)


def test_training_properties_need_conda_env_or_docker_image() -> None:
    body = training_body()
    del body["model_config"]["training_properties"]["conda_env"]
    assert_error(errors(body), TRAINING, "conda_env", "docker_image")


def test_training_args_must_be_an_object_of_scalars() -> None:
    found = errors(training_body(args={"--layers": [1, 2]}))
    assert any(e.field.startswith(f"{TRAINING}.args['--layers']") for e in found), found


def test_inference_properties_do_not_take_args() -> None:
    body = body_with(f"{INFERENCE}.args", {"-v": ""})
    assert only_error(body) == FieldError(f"{INFERENCE}.args", "unknown field")


# --------------------------------------------------------------------------------------------
# docker_registry.password is write-only
# --------------------------------------------------------------------------------------------


def test_docker_password_is_not_in_the_repr_of_the_parsed_request() -> None:
    request = parse(deepdev_example_body(), name="gptc", version="1.0")
    registry = request.config.inference_properties.docker_registry
    assert registry is not None
    assert registry.password == DOCKER_PASSWORD
    for shown in (repr(request), str(request), repr(registry), str(registry), repr(request.config)):
        assert DOCKER_PASSWORD not in shown


def test_docker_password_is_not_in_error_messages() -> None:
    body = deepdev_example_body()
    body["model_config"]["inference_properties"]["docker_registry"]["bogus"] = DOCKER_PASSWORD
    body["model_config"]["inference_properties"]["docker_registry"]["url"] = ""
    body["model_config"]["inference_properties"]["docker_registry"]["password"] = DOCKER_PASSWORD * 200
    body["model_config"]["inference_properties"]["docker_image"] = ""
    with pytest.raises(InvalidRequest) as raised:
        parse_registration(body, context(name="gptc", version="1.0"))
    found = raised.value.errors
    assert len(found) >= 3, found
    assert DOCKER_PASSWORD not in str(raised.value)
    assert DOCKER_PASSWORD not in repr(found)


def test_docker_password_of_the_wrong_type_is_not_echoed() -> None:
    body = deepdev_example_body()
    secret_number = 987654321123456789
    body["model_config"]["inference_properties"]["docker_registry"]["password"] = secret_number
    with pytest.raises(InvalidRequest) as raised:
        parse_registration(body, context(name="gptc", version="1.0"))
    assert_error(raised.value.errors, f"{INFERENCE}.docker_registry.password", "string")
    assert str(secret_number) not in str(raised.value)


# --------------------------------------------------------------------------------------------
# model_metainfo
# --------------------------------------------------------------------------------------------

META = "model_metainfo"


@pytest.mark.parametrize(
    "field",
    [
        "input_types",
        "output_types",
        "input_description",
        "output_description",
        "num_params",
        "index_page_file",
    ],
)
def test_metainfo_required_fields(field: str) -> None:
    assert only_error(body_without(f"{META}.{field}")) == FieldError(f"{META}.{field}", "field required")


def test_metainfo_is_required() -> None:
    assert only_error(body_without(META)) == FieldError(META, "field required")


@pytest.mark.parametrize("side", ["input", "output"])
def test_types_must_not_be_empty(side: str) -> None:
    body = body_with(f"{META}.{side}_types", [])
    del body[META][f"{side}_languages"]
    assert_error(errors(body), f"{META}.{side}_types", "at least 1")


@pytest.mark.parametrize("side", ["input", "output"])
def test_types_must_be_enum_values(side: str) -> None:
    found = errors(body_with(f"{META}.{side}_types", ["SOURCE_CODE", "IMAGE"]))
    error = assert_error(found, f"{META}.{side}_types[1]", "SOURCE_CODE")
    for value in ("NATURAL_LANGUAGE", "CLASS_LABEL", "OTHER"):
        assert value in error.rule


def test_all_type_values_are_accepted() -> None:
    body = registration_body()
    body[META]["input_types"] = ["SOURCE_CODE", "NATURAL_LANGUAGE", "CLASS_LABEL", "OTHER"]
    parse(body)


@pytest.mark.parametrize("value", [50_000_000, 1, 5e7, 1.0e3])
def test_num_params_accepts_positive_whole_numbers(value: Any) -> None:
    parsed = parse(body_with(f"{META}.num_params", value)).model_metainfo.num_params
    assert parsed == int(value)
    assert type(parsed) is int


@pytest.mark.parametrize("value", [0, -1, -5e7, 1.5, True, False, "50000000", None, [1]])
def test_num_params_refuses_anything_but_a_positive_integer(value: Any) -> None:
    error = only_error(body_with(f"{META}.num_params", value))
    assert error.field == f"{META}.num_params"
    assert "positive integer" in error.rule or "greater than 0" in error.rule


@pytest.mark.parametrize("page", ["index.md", "docs/README.MD"])
def test_index_page_file_accepts_md_keys(page: str) -> None:
    parse(with_files(body_with(f"{META}.index_page_file", page), page))


def test_index_page_file_must_be_md() -> None:
    body = with_files(body_with(f"{META}.index_page_file", "index.html"), "index.html")
    assert_error(errors(body), f"{META}.index_page_file", ".md")


def test_index_page_file_must_be_a_key_of_model_files() -> None:
    assert_error(errors(body_with(f"{META}.index_page_file", "other.md")), f"{META}.index_page_file", "key")


@pytest.mark.parametrize("side", ["input", "output"])
@pytest.mark.parametrize("types", [["SOURCE_CODE"], ["NATURAL_LANGUAGE"], ["OTHER", "NATURAL_LANGUAGE"]])
def test_languages_are_required_for_code_and_natural_language(side: str, types: list[str]) -> None:
    body = body_with(f"{META}.{side}_types", types)
    del body[META][f"{side}_languages"]
    error = only_error(body)
    assert f"{side}_languages" in error.field + error.rule
    assert "required" in error.rule


@pytest.mark.parametrize("side", ["input", "output"])
def test_languages_must_not_be_empty_for_code(side: str) -> None:
    error = only_error(body_with(f"{META}.{side}_languages", []))
    assert f"{side}_languages" in error.field + error.rule
    assert "non-empty" in error.rule


@pytest.mark.parametrize("side", ["input", "output"])
@pytest.mark.parametrize("types", [["CLASS_LABEL"], ["OTHER"], ["CLASS_LABEL", "OTHER"]])
def test_languages_are_refused_for_other_types(side: str, types: list[str]) -> None:
    body = body_with(f"{META}.{side}_types", types)
    error = only_error(body)
    assert f"{side}_languages" in error.field + error.rule
    assert "only" in error.rule


@pytest.mark.parametrize("side", ["input", "output"])
def test_other_types_without_languages_are_accepted(side: str) -> None:
    body = body_with(f"{META}.{side}_types", ["CLASS_LABEL"])
    del body[META][f"{side}_languages"]
    parse(body)


def test_languages_are_plain_lists_of_strings() -> None:
    found = errors(body_with(f"{META}.input_languages", [["CSHARP"]]))
    assert_error(found, f"{META}.input_languages[0]", "string")


def test_images_are_optional_keys_of_model_files() -> None:
    body = with_files(body_with(f"{META}.images", ["img/a.png", "b.png"]), "img/a.png", "b.png")
    assert parse(body).model_metainfo.images == ["img/a.png", "b.png"]


def test_images_must_be_keys_of_model_files() -> None:
    body = with_files(body_with(f"{META}.images", ["a.png", "missing.png"]), "a.png")
    assert_error(errors(body), f"{META}.images[1]", "key of model_files")
    assert all(e.field != f"{META}.images[0]" for e in errors(body))


# --------------------------------------------------------------------------------------------
# model_files keys
# --------------------------------------------------------------------------------------------


def test_model_files_are_required_and_not_empty() -> None:
    assert FieldError("model_files", "field required") in errors(body_without("model_files"))
    found = errors(body_with("model_files", {}))
    assert_error(found, "model_files", "at least one")


@pytest.mark.parametrize(
    ("key", "rule_word"),
    [
        ("/abs.bin", "leading '/'"),
        ("a/../b.bin", ".."),
        ("../b.bin", ".."),
        ("a//b.bin", "empty"),
        ("a/", "empty"),
        ("./a.bin", "'.'"),
        ("a\\b.bin", "backslash"),
        ("a\nb.bin", "control"),
        ("a\x00b.bin", "control"),
        ("a\x7fb.bin", "control"),
        ("a\x85b.bin", "control"),
        ("", "empty"),
        ("x" * 1025, "1024"),
    ],
)
def test_file_keys_must_be_safe_relative_blob_paths(key: str, rule_word: str) -> None:
    body = registration_body()
    body["model_files"][key] = source_url("x.bin")
    error = only_error(body)
    assert error.field == f"model_files[{safe_key(key)!r}]"
    assert rule_word in error.rule


@pytest.mark.parametrize("key", ["a.bin", "deep/ly/nested/file.bin", "x" * 900, "with space.bin", "ünï.bin"])
def test_file_keys_accept_relative_paths(key: str) -> None:
    body = registration_body()
    body["model_files"][key] = source_url("x.bin")
    parse(body)


def test_at_most_1000_files() -> None:
    body = registration_body()
    for i in range(1000 - len(body["model_files"])):
        body["model_files"][f"shard/{i:04d}.bin"] = source_url(f"{i}.bin")
    parse(body)
    body["model_files"]["one-too-many.bin"] = source_url("x.bin")
    assert_error(errors(body), "model_files", "1000")


# --------------------------------------------------------------------------------------------
# Source URLs (model_files values and private_packages)
# --------------------------------------------------------------------------------------------


def with_source(url: str) -> dict[str, Any]:
    body = registration_body()
    body["model_files"]["weights/model.bin"] = url
    return body


SOURCE_FIELD = "model_files['weights/model.bin']"


@pytest.mark.parametrize(
    "url",
    [
        f"https://acct.blob.core.windows.net/c/model.bin?{SAS}",
        "https://acct.blob.core.windows.net/c/model.bin",
        f"https://ACCT.Blob.Core.Windows.Net/c/model.bin?{SAS}",
        f"https://acct.blob.core.windows.net:443/c/deep/model.bin?{SAS}",
    ],
)
def test_https_sources_on_the_default_allow_list_are_accepted(url: str) -> None:
    parse(with_source(url))


@pytest.mark.parametrize(
    "url",
    [
        f"http://acct.blob.core.windows.net/c/model.bin?{SAS}",
        f"ftp://acct.blob.core.windows.net/c/model.bin?{SAS}",
        f"file:///etc/passwd?{SAS}",
    ],
)
def test_sources_must_use_https(url: str) -> None:
    error = only_error(with_source(url))
    assert error.field == SOURCE_FIELD
    assert "https" in error.rule or "absolute" in error.rule


@pytest.mark.parametrize(
    "url",
    [
        f"https://example.com/model.bin?{SAS}",
        f"https://blob.core.windows.net.evil.com/c/model.bin?{SAS}",
        f"https://acct.blob.core.windows.net.evil.com/c/model.bin?{SAS}",
        f"https://acct.file.core.windows.net/c/model.bin?{SAS}",
        f"https://localhost/model.bin?{SAS}",
        f"https://127.0.0.1:10000/devstoreaccount1/c/model.bin?{SAS}",
    ],
)
def test_sources_must_be_on_allowed_hosts(url: str) -> None:
    error = only_error(with_source(url))
    assert error.field == SOURCE_FIELD
    assert "not allowed" in error.rule or "DNS name" in error.rule


@pytest.mark.parametrize(
    "url",
    [
        "model.bin",
        "/c/model.bin",
        "https://",
        "https:///c/model.bin",
        "https://acct.blob.core.windows.net:x/c",
    ],
)
def test_sources_must_be_absolute_urls(url: str) -> None:
    error = only_error(with_source(url))
    assert error.field == SOURCE_FIELD
    assert (
        "absolute" in error.rule or "https" in error.rule or "DNS name" in error.rule or "port" in error.rule
    )


def test_sources_must_not_carry_user_credentials() -> None:
    error = only_error(with_source("https://user:pw@acct.blob.core.windows.net/c/model.bin"))
    assert error.field == SOURCE_FIELD
    assert "credentials" in error.rule
    assert "pw" not in error.rule


def test_allowed_hosts_come_from_the_setting() -> None:
    body = registration_body()
    body["model_files"] = {k: f"https://models.example.org/{k}?{SAS}" for k in body["model_files"]}
    parse(body, hosts=("models.example.org",))
    body["model_files"]["weights/model.bin"] = source_url("model.bin")
    error = only_error(body, hosts=("models.example.org",))
    assert error.field == SOURCE_FIELD
    assert "not allowed" in error.rule
    assert "models.example.org" in error.rule


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:10000/devstoreaccount1/src/model.bin?sig=x",
        "http://localhost:10000/devstoreaccount1/src/model.bin",
        "https://127.0.0.1:10000/devstoreaccount1/src/model.bin",
    ],
)
def test_http_and_loopback_sources_only_with_allow_insecure_sources(url: str) -> None:
    parse(with_source(url), insecure=True)
    assert only_error(with_source(url), insecure=False).field == SOURCE_FIELD


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/model.bin",
        "http://acct.blob.core.windows.net/c/model.bin",
        "http://[::1]:10000/a/b",
    ],
)
def test_allow_insecure_sources_still_refuses_http_beyond_the_local_emulator(url: str) -> None:
    error = only_error(with_source(url), insecure=True)
    assert "https" in error.rule


def test_private_packages_follow_the_source_rules() -> None:
    body = registration_body(private_packages=[source_url("pkg.whl"), f"http://example.com/pkg.whl?{SAS}"])
    error = only_error(body)
    assert error.field == "private_packages[1]"
    assert "https" in error.rule


def test_private_packages_are_accepted() -> None:
    request = parse(registration_body(private_packages=[source_url("pkg.whl")]))
    assert request.private_packages == [source_url("pkg.whl")]


# --------------------------------------------------------------------------------------------
# Unknown fields, body shape, several violations
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "surprise",
        "model_config.visibility",
        "model_config.inference_properties.gpu",
        "model_config.inference_properties.docker_registry.token",
        "model_metainfo.license",
    ],
)
def test_unknown_fields_are_refused_by_name(path: str) -> None:
    body = registration_body()
    body["model_config"]["inference_properties"]["docker_image"] = "img"
    body["model_config"]["inference_properties"]["docker_registry"] = {"url": "r.azurecr.io"}
    *parents, last = path.split(".")
    target = body
    for part in parents:
        target = target[part]
    target[last] = "x"
    assert only_error(body) == FieldError(path, "unknown field")


def test_unknown_field_in_training_properties_is_refused_by_name() -> None:
    body = training_body(epochs=3)
    assert only_error(body) == FieldError(f"{TRAINING}.epochs", "unknown field")


@pytest.mark.parametrize("body", [[], "text", 5, None, True])
def test_body_must_be_a_json_object(body: Any) -> None:
    assert only_error(body) == FieldError("body", "must be a JSON object")


def test_several_violations_are_all_reported_together() -> None:
    body = registration_body(extra="x")
    body["model_config"]["type"] = "GIANT"
    body["model_config"]["inference_properties"]["entry_script"] = "missing.py"
    body["model_files"]["/abs"] = source_url("abs")
    body["model_files"]["ok.bin"] = "http://example.com/ok.bin"
    body["model_metainfo"]["num_params"] = -3
    body["model_metainfo"]["index_page_file"] = "nope.md"
    found = errors(body)
    fields = {e.field for e in found}
    assert {
        "extra",
        "model_config.type",
        f"{INFERENCE}.entry_script",
        "model_files['/abs']",
        "model_files['ok.bin']",
        f"{META}.num_params",
        f"{META}.index_page_file",
    } <= fields


def test_cross_field_violations_are_reported_with_field_violations() -> None:
    body = registration_body()
    del body[META]["input_languages"]  # required: input_types has SOURCE_CODE
    body[META]["num_params"] = 0
    del body["model_config"]["inference_properties"]["conda_env"]  # nor docker_image
    body["model_config"]["inference_properties"]["entry_script"] = "missing.py"
    found = errors(body)
    text = " ".join(f"{e.field} {e.rule}" for e in found)
    assert "num_params" in text
    assert "entry_script" in text
    assert "input_languages" in text
    assert "docker_image" in text


def test_invalid_request_message_names_every_field_and_rule() -> None:
    body = body_with("model_config.type", "GIANT")
    body[META]["num_params"] = 0
    with pytest.raises(InvalidRequest) as raised:
        parse(body)
    message = str(raised.value)
    for error in raised.value.errors:
        assert f"{error.field}: {error.rule}" in message


# --------------------------------------------------------------------------------------------
# SAS query strings never appear in errors
# --------------------------------------------------------------------------------------------


def assert_no_sas(error: InvalidRequest) -> None:
    everything = str(error) + repr(error.errors) + "".join(e.field + e.rule for e in error.errors)
    assert "sig=" not in everything
    assert SAS not in everything


@pytest.mark.parametrize(
    "url",
    [
        f"http://acct.blob.core.windows.net/c/model.bin?{SAS}",
        f"https://example.com/model.bin?{SAS}",
        f"https://user:pw@acct.blob.core.windows.net/c/model.bin?{SAS}",
        f"https://acct.blob.core.windows.net:bad/c/model.bin?{SAS}",
        f"ftp://acct.blob.core.windows.net/c/model.bin?{SAS}",
    ],
)
def test_bad_source_errors_never_contain_the_sas(url: str) -> None:
    with pytest.raises(InvalidRequest) as raised:
        parse(with_source(url))
    assert_no_sas(raised.value)


def test_misplaced_sas_urls_in_file_references_are_not_echoed() -> None:
    body = registration_body()
    body["model_config"]["inference_properties"]["entry_script"] = source_url("score.py")
    body["model_config"]["inference_properties"]["conda_env"] = source_url("env.yml")
    body[META]["index_page_file"] = source_url("index.md")
    with pytest.raises(InvalidRequest) as raised:
        parse(body)
    assert len(raised.value.errors) >= 3
    assert_no_sas(raised.value)


def test_sas_url_given_as_an_image_is_not_echoed() -> None:
    body = body_with(f"{META}.images", [source_url("diagram.png")])
    with pytest.raises(InvalidRequest) as raised:
        parse(body)
    assert_no_sas(raised.value)


def test_sas_url_given_as_a_file_key_is_not_echoed() -> None:
    body = registration_body()
    body["model_files"][source_url("model.bin")] = "weights/model.bin"  # key and value swapped
    with pytest.raises(InvalidRequest) as raised:
        parse(body)
    assert_no_sas(raised.value)


def test_valid_body_is_not_mutated_by_parsing() -> None:
    body = deepdev_example_body()
    before = copy.deepcopy(body)
    parse(body, name="gptc", version="1.0")
    assert body == before


@pytest.mark.parametrize(
    "name",
    ["model.sig", "registry-manifest.json", ".git/config", ".gitattributes", ".github/x.yml", ".gitignore"],
)
def test_names_a_downloaded_model_directory_reserves_are_refused(name: str) -> None:
    body = registration_body()
    body["model_files"][name] = source_url(name)
    assert_error(errors(body), f"model_files[{name!r}]", "reserved")


def test_a_file_named_like_another_files_folder_is_refused() -> None:
    body = registration_body()
    body["model_files"] |= {"weights": source_url("w"), "weights/part-1.bin": source_url("p")}
    assert_error(errors(body), "model_files['weights']", "folder of 'weights/part-1.bin'")


def test_an_update_adding_a_file_under_an_existing_files_name_is_refused() -> None:
    existing = RequestContext(**{**vars(context()), "existing_files": frozenset({"score.py", "data"})})
    with pytest.raises(InvalidRequest) as raised:
        parse_with(UpdateRequest, {"model_files": {"data/shard-0.bin": source_url("s")}}, existing)
    assert_error(raised.value.errors, "model_files['data']", "folder")
