"""The OpenAPI document: valid OpenAPI 3.1, exactly the app's HTTP routes, generated from the models."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from openapi_spec_validator import OpenAPIV31SpecValidator, validate
from pydantic import BaseModel

from registry.blueprints import api_models as api
from registry.blueprints import http, models_api, openapi
from registry.domain.listing import ModelFilter
from registry.validation import CloneRequest, FieldError, RegistrationRequest, UpdateRequest
from tests.builders import make_settings

# The Functions worker indexes the app once per process (a second get_functions() reports
# duplicates): reuse what the indexing test already read.
from tests.test_function_indexing import FUNCTIONS

SERVER = "http://localhost/api/v1.0"
REF = "#/components/schemas/{model}"
METHODS = {"get", "put", "post", "patch", "delete", "head", "options", "trace"}


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return openapi.document(SERVER, models_api.routes())


def _http_routes() -> dict[tuple[str, str], str]:
    """(OpenAPI path, method) -> function name, for every HTTP function the app declares."""
    routes = {}
    for function in FUNCTIONS:
        bindings = json.loads(function.get_function_json())["bindings"]
        for binding in bindings:
            if binding["type"] != "httpTrigger":
                continue
            route = binding["route"]
            if route == "catalog" or route.startswith("catalog/"):
                continue  # the web catalog's HTML pages (registry/web) are not API operations
            assert route.startswith("v1.0/"), route
            path = "/" + re.sub(r"\{\*(\w+)\}", r"{\1}", route.removeprefix("v1.0/"))
            name = function.get_function_name()
            assert name is not None
            for method in binding["methods"]:
                routes[(path, method.lower())] = name
    return routes


def _operations(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (path, method): operation
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    }


def _resolve(document: dict[str, Any], ref: str) -> dict[str, Any]:
    assert ref.startswith("#/components/schemas/"), ref
    schema: dict[str, Any] = document["components"]["schemas"][ref.rsplit("/", 1)[1]]
    return schema


def test_the_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    assert document["openapi"].startswith("3.1")
    validate(document, cls=OpenAPIV31SpecValidator)


def test_the_document_is_plain_json(document: dict[str, Any]) -> None:
    assert json.loads(json.dumps(document)) == document


def test_the_server_is_the_api_base_it_was_given(document: dict[str, Any]) -> None:
    assert document["servers"] == [{"url": SERVER}]


def test_the_paths_and_methods_are_exactly_the_http_routes_of_the_app(document: dict[str, Any]) -> None:
    routes = _http_routes()
    assert len(routes) >= 10  # the indexing really found the app's HTTP functions
    assert set(_operations(document)) == set(routes)


def test_each_operation_id_is_the_function_that_serves_it(document: dict[str, Any]) -> None:
    routes = _http_routes()
    assert {key: op["operationId"] for key, op in _operations(document).items()} == routes


def test_each_path_parameter_is_declared_required_and_nothing_else_is_in_the_path(
    document: dict[str, Any],
) -> None:
    for (path, method), operation in _operations(document).items():
        in_path = set(re.findall(r"\{(\w+)\}", path))
        declared = {p["name"] for p in operation["parameters"] if p["in"] == "path"}
        assert declared == in_path, (path, method)
        assert all(p["required"] for p in operation["parameters"] if p["in"] == "path")


# The document itself, and the public keys manifests are verified with.
ANONYMOUS = ("/openapi.json", "/signing-keys")


def test_every_operation_declares_the_error_shape(document: dict[str, Any]) -> None:
    error = document["components"]["schemas"]["ErrorResponse"]
    assert {"message", "error_message"} <= set(error["properties"])
    assert {"message", "error_message"} <= set(error["required"])
    for (path, method), operation in _operations(document).items():
        codes = set(operation["responses"])
        if path in ANONYMOUS:  # served to anyone, and they cannot fail
            continue
        assert "401" in codes, (path, method)
        errors = {code: r for code, r in operation["responses"].items() if code[0] in "45"}
        assert errors, (path, method)
        for code, response in errors.items():
            schema = response["content"]["application/json"]["schema"]
            assert schema == {"$ref": REF.format(model="ErrorResponse")}, (path, method, code)


def test_operations_on_a_named_model_declare_404(document: dict[str, Any]) -> None:
    for (path, method), operation in _operations(document).items():
        if "{name}" in path and method != "put":
            assert "404" in operation["responses"], (path, method)
    assert "404" in document["paths"]["/model/clone/{name}/{version}"]["put"]["responses"]


def test_every_operation_is_under_the_declared_security_scheme(document: dict[str, Any]) -> None:
    schemes = document["components"]["securitySchemes"]
    assert schemes
    for (path, method), operation in _operations(document).items():
        if path in ANONYMOUS:  # served to anyone (Easy Auth still in front in Azure)
            assert operation["security"] == []
            continue
        security = operation.get("security", document.get("security"))
        assert security, (path, method)
        assert all(set(requirement) <= set(schemes) for requirement in security), (path, method)
        assert any(requirement for requirement in security), (path, method)  # not optional ({})


def test_every_reference_resolves(document: dict[str, Any]) -> None:
    text = json.dumps(document)
    for ref in set(re.findall(r'"\$ref": "([^"]+)"', text)):
        _resolve(document, ref)


@pytest.mark.parametrize(
    ("path", "method", "model"),
    [
        ("/model/{name}/{version}", "put", RegistrationRequest),
        ("/model/{name}/{version}", "patch", UpdateRequest),
        ("/model/clone/{name}/{version}", "put", CloneRequest),
    ],
)
def test_request_bodies_are_the_pydantic_models_the_code_validates_with(
    document: dict[str, Any], path: str, method: str, model: type[BaseModel]
) -> None:
    body = document["paths"][path][method]["requestBody"]
    assert body["required"] is True
    ref = body["content"]["application/json"]["schema"]["$ref"]
    generated = model.model_json_schema(by_alias=True, ref_template=REF, mode="validation")
    documented = _resolve(document, ref)
    assert set(documented["properties"]) == set(generated["properties"])
    assert set(documented.get("required", [])) == set(generated.get("required", []))
    assert documented["additionalProperties"] is False
    for name in generated.pop("$defs", {}):
        assert name in document["components"]["schemas"], name


def test_request_fields_are_given_with_a_value_or_left_out_never_null(document: dict[str, Any]) -> None:
    text = json.dumps(
        {
            k: document["components"]["schemas"][k]
            for k in (
                "RegistrationRequest",
                "ModelConfig",
                "InferenceProperties",
                "ModelMetainfo",
                "UpdateRequest",
                "CloneRequest",
            )
        }
    )
    assert '{"type": "null"}' not in text


def test_the_document_states_the_rules_json_schema_can_express(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    inference = schemas["InferenceProperties"]
    assert {"required": ["conda_env"], "properties": {"conda_env": {"type": "string"}}} in inference["anyOf"]
    assert inference["then"]["required"] == ["docker_image"]  # a docker_registry needs a docker_image
    assert inference["properties"]["entry_script"]["pattern"].endswith(r"\.py$")
    meta = schemas["ModelMetainfo"]
    assert {"type": "integer", "exclusiveMinimum": 0}.items() <= meta["properties"]["num_params"].items()
    assert len(meta["allOf"]) == 2 and all({"if", "then", "else"} <= set(rule) for rule in meta["allOf"])
    files = schemas["RegistrationRequest"]["properties"]["model_files"]
    assert files["minProperties"] == 1 and files["propertyNames"]["pattern"]
    assert document["paths"]["/model/{name}/{version}"]["put"]["x-registry-rules"]
    name = document["paths"]["/model/{name}/{version}"]["put"]["parameters"][0]
    assert name["schema"]["pattern"].startswith("^(?!")


def test_with_the_settings_the_document_states_the_allowed_source_hosts_and_file_limit() -> None:
    settings = make_settings(
        REGISTRY_ALLOWED_SOURCE_HOSTS="*.blob.core.windows.net,models.example.org", REGISTRY_MAX_FILES="7"
    )
    files = openapi.document(SERVER, models_api.routes(), settings)["components"]["schemas"][
        "RegistrationRequest"
    ]["properties"]["model_files"]
    url, with_digest = files["additionalProperties"]["anyOf"]
    assert with_digest["properties"]["url"]["pattern"] == url["pattern"]
    assert with_digest["required"] == ["url", "sha256"]
    pattern = re.compile(url["pattern"])
    assert files["maxProperties"] == 7
    assert pattern.fullmatch("https://acct.blob.core.windows.net/c/m.bin?sv=1&sig=a%2B")
    assert pattern.fullmatch("https://models.example.org/m.bin")
    for refused in (
        "http://acct.blob.core.windows.net/m",
        "https://evil.example/m",
        "https://a.models.example.org/m",
    ):
        assert not pattern.fullmatch(refused), refused


def test_the_registration_request_schema_is_strict_with_its_three_sections(document: dict[str, Any]) -> None:
    schema = document["components"]["schemas"]["RegistrationRequest"]
    assert {"model_config", "model_files", "model_metainfo"} <= set(schema["properties"])
    assert set(schema["required"]) == {"model_config", "model_files", "model_metainfo"}
    assert schema["additionalProperties"] is False
    for nested in ("ModelConfig", "ModelMetainfo", "UpdateRequest", "CloneRequest"):
        assert document["components"]["schemas"][nested]["additionalProperties"] is False, nested


def test_the_update_schema_offers_only_what_a_patch_may_change(document: dict[str, Any]) -> None:
    schema = document["components"]["schemas"]["UpdateRequest"]
    assert set(schema["properties"]) == {"model_config", "model_metainfo", "model_files"}
    assert set(document["components"]["schemas"]["ConfigChanges"]["properties"]) == {"private", "description"}


def test_the_docker_registry_password_is_write_only_in_the_schema(document: dict[str, Any]) -> None:
    for name, schema in document["components"]["schemas"].items():
        if name not in ("DockerRegistry",):
            assert "password" not in schema.get("properties", {}), name


@pytest.mark.parametrize(
    "reply",
    [
        http.error(409, "Conflict", "the model changed"),
        http.not_found("the model"),
        http.error(401, "Unauthorized", "sign in", headers={"WWW-Authenticate": "Bearer"}),
        http.error(400, "Invalid request", "limit: bad", [FieldError("limit", "must be between 1 and 1000")]),
    ],
    ids=["conflict", "not-found", "unauthorized", "invalid"],
)
def test_the_error_bodies_the_api_sends_match_the_documented_error_shape(reply: http.Reply) -> None:
    body = json.loads(http.respond(reply).get_body())
    api.ErrorResponse.model_validate(body)
    assert ("errors" in body) is (reply.status == 400)  # absent, not null, when there are none


def test_the_listing_query_parameters_are_those_the_function_accepts(document: dict[str, Any]) -> None:
    parameters = document["paths"]["/models"]["get"]["parameters"]
    names = {p["name"] for p in parameters if p["in"] == "query"}
    assert names == {*ModelFilter.__dataclass_fields__, "limit", "continuation"}  # as list_models accepts
    assert names == set(api.ListQuery.model_fields)
    limit = next(p for p in parameters if p["name"] == "limit")["schema"]
    assert (limit["minimum"], limit["maximum"]) == (1, 1000)
