"""The HTTP functions, called as the Functions host calls them, on fake dependencies (no host,
no monkeypatching): inputs that used to answer 500, admission limits, identity, storage limits."""

from __future__ import annotations

import json
import random
import string
from typing import Any
from urllib.parse import urlencode

import azure.functions as func
import pytest

from registry.blueprints import models_api
from registry.blueprints.http import Route, serve
from registry.domain.vocabulary import State
from registry.services.dependencies import Dependencies
from registry.services.limits import Admission
from tests.builders import SAS, make_deps, make_settings, registration_body, source_url
from tests.fakes import FakeJobQueue, FakeRegistrationStore

ROUTES = {route.operation_id: route for route in models_api.routes()}
ALICE = {"X-MS-CLIENT-PRINCIPAL-ID": "alice", "X-MS-CLIENT-PRINCIPAL-NAME": "alice"}


def request(
    route: str,
    *,
    body: Any = None,
    raw: bytes | None = None,
    params: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    **route_params: str,
) -> tuple[func.HttpRequest, Route]:
    data = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
    url = "http://localhost/api/x" + (f"?{urlencode(params)}" if params else "")
    req = func.HttpRequest(
        method=ROUTES[route].method,
        url=url,
        headers={"Content-Type": "application/json", **(ALICE if headers is None else headers)},
        params=params or {},
        route_params=route_params,
        body=data,
    )
    return req, ROUTES[route]


def call(deps: Dependencies, route: str, **kwargs: Any) -> func.HttpResponse:
    req, found = request(route, **kwargs)
    return serve(req, found, deps)


@pytest.fixture
def dev() -> Dependencies:
    return make_deps(make_settings(REGISTRY_DEV_MODE="true"))


def put(deps: Dependencies, body: Any, name: str = "m", version: str = "1") -> func.HttpResponse:
    return call(deps, "register_model", body=body, name=name, version=version)


def errors_of(response: func.HttpResponse) -> dict[str, str]:
    return {e["field"]: e["rule"] for e in json.loads(response.get_body()).get("errors", [])}


# -- inputs that answered 500 (issue 8.5) ---------------------------------------------------------


def test_a_null_conda_env_beside_a_docker_image_is_accepted(dev: Dependencies) -> None:
    body = registration_body()
    body["model_config"]["inference_properties"] |= {"conda_env": None, "docker_image": "mcr.microsoft.com/x"}
    assert put(dev, body).status_code == 202


def test_a_null_conda_env_without_a_docker_image_is_a_400_naming_the_rule(dev: Dependencies) -> None:
    body = registration_body()
    body["model_config"]["inference_properties"]["conda_env"] = None
    response = put(dev, body)
    assert response.status_code == 400
    assert "conda_env or docker_image" in errors_of(response)["model_config.inference_properties"]


@pytest.mark.parametrize("depth", [40, 5000, 100_000])
def test_deeply_nested_json_is_a_400(dev: Dependencies, depth: int) -> None:
    raw = ("[" * depth + "]" * depth).encode()
    response = call(dev, "register_model", raw=raw, name="m", version="1")
    assert response.status_code == 400
    assert "nest" in errors_of(response)["body"]


def test_deep_nesting_inside_a_patch_is_a_400(dev: Dependencies) -> None:
    assert put(dev, registration_body()).status_code == 202
    nested: Any = "x"
    for _ in range(60):
        nested = {"a": nested}
    response = call(
        dev, "update_model", body={"model_metainfo": {"input_description": nested}}, name="m", version="1"
    )
    assert response.status_code == 400


@pytest.mark.parametrize("limit", ["²", "\u0661", "0x10", "1e3", "-1", "0", "1001", " ", "", "\u0663"])
def test_a_limit_that_is_not_a_plain_number_in_range_is_a_400(dev: Dependencies, limit: str) -> None:
    response = call(dev, "list_models", params={"limit": limit})
    assert response.status_code == 400
    assert "limit" in errors_of(response)


@pytest.mark.parametrize(
    "override",
    [
        {"inference_properties": "x"},
        {"inference_properties": None},
        {"training_properties": 5},
        {"type": ["ENCODER"]},
        {"docker": {}},
    ],
)
def test_a_clone_override_of_the_wrong_shape_is_a_400(override: dict[str, Any]) -> None:
    store = FakeRegistrationStore()
    dev = make_deps(make_settings(REGISTRY_DEV_MODE="true"), store=store)
    body = registration_body()
    body["model_config"]["private"] = False
    assert put(dev, body).status_code == 202
    store.update("alice", "m", "1", state=State.FINISHED, finished_once=True)  # a parent others may clone
    response = call(
        dev,
        "clone_model",
        body={"parent_version": "1", "parent_owner": "alice", "model_config": override},
        name="m",
        version="2",
    )
    assert response.status_code == 400, response.get_body()
    assert any(field.startswith("model_config") for field in errors_of(response))


@pytest.mark.parametrize(
    ("route", "params"),
    [
        ("list_models", {"trainable": "yes"}),
        ("list_models", {"type": "GIANT"}),
        ("list_models", {"name": "a/b"}),
        ("list_models", {"continuation": "x" * 5000}),
        ("list_models", {"colour": "red"}),
    ],
)
def test_bad_query_parameters_are_a_400_naming_them(
    dev: Dependencies, route: str, params: dict[str, str]
) -> None:
    response = call(dev, route, params=params)
    assert response.status_code == 400
    assert set(errors_of(response)) == set(params)


def test_random_json_bodies_never_answer_500(dev: Dependencies) -> None:
    rng = random.Random(7)

    def value(depth: int) -> Any:
        kind = rng.randrange(7 if depth < 4 else 4)
        if kind == 0:
            return rng.choice([None, True, False, 0, -1, 1.5, 10**20])
        if kind in (1, 2, 3):
            return "".join(rng.choice(string.printable + "é\u2215") for _ in range(rng.randrange(12)))
        if kind == 4:
            return [value(depth + 1) for _ in range(rng.randrange(3))]
        keys = ["model_config", "model_files", "model_metainfo", "type", "inference_properties", "x"]
        return {rng.choice(keys): value(depth + 1) for _ in range(rng.randrange(4))}

    for _ in range(300):
        body = registration_body()
        section = rng.choice(["model_config", "model_files", "model_metainfo"])
        body[section] = value(0) if rng.random() < 0.5 else {**body[section], "x": value(1)}
        for route in ("register_model", "update_model"):
            assert call(dev, route, body=body, name="m", version="1").status_code < 500


# -- unknown keys are echoed only safely ----------------------------------------------------------


def test_an_unknown_key_holding_a_sas_url_is_never_echoed_whole(dev: Dependencies) -> None:
    body = registration_body()
    secret_key = source_url("stolen.bin")
    body["model_metainfo"][secret_key] = 1
    body["model_config"][secret_key] = 1
    response = put(dev, body)
    assert response.status_code == 400
    text = response.get_body().decode()
    assert SAS not in text and "sig=" not in text
    assert all(len(field) < 120 for field in errors_of(response))


# -- storage limits at the PUT (issue 8.4) --------------------------------------------------------


def test_a_file_name_that_makes_too_long_a_blob_name_is_a_400_naming_the_limit(dev: Dependencies) -> None:
    body = registration_body()
    body["model_files"]["d/" * 10 + "x" * 1000] = source_url("x.bin")
    response = put(dev, body, name="n" * 100, version="v" * 100)
    assert response.status_code == 400
    assert any("1024" in rule for rule in errors_of(response).values())


def test_a_file_name_with_too_many_path_segments_is_a_400(dev: Dependencies) -> None:
    body = registration_body()
    body["model_files"]["a/" * 260 + "b.bin"] = source_url("x.bin")
    response = put(dev, body)
    assert response.status_code == 400
    assert any("path segments" in rule for rule in errors_of(response).values())


def test_a_registration_larger_than_an_entity_holds_is_a_413_and_records_nothing() -> None:
    store = FakeRegistrationStore()
    deps = make_deps(make_settings(REGISTRY_DEV_MODE="true"), store=store)
    rng = random.Random(1)
    body = registration_body()
    for i in range(700):  # random (incompressible) names and paths: about 700 KB of body
        name = "".join(rng.choice(string.ascii_letters) for _ in range(500))
        path = "".join(rng.choice(string.ascii_letters) for _ in range(400))
        body["model_files"][f"f{i}/{name}"] = f"https://acct.blob.core.windows.net/c/{path}?{SAS}"
    response = put(deps, body)
    assert len(json.dumps(body)) < deps.settings.max_body_bytes
    assert response.status_code == 413, response.get_body()
    assert "1,048,576" in json.loads(response.get_body())["error_message"]
    assert store.all() == []


# -- admission (issue 8.4) -------------------------------------------------------------------------


def test_a_caller_over_the_rate_limit_gets_429_with_retry_after_and_others_do_not() -> None:
    now = [0.0]
    deps = make_deps(make_settings(REGISTRY_DEV_MODE="true"))
    deps = type(deps)(**{**vars(deps), "admission": Admission(((2, 1.0), (3, 60.0)), clock=lambda: now[0])})
    statuses = [call(deps, "list_models").status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    limited = call(deps, "list_models")
    assert limited.headers["Retry-After"] == "1"
    bob = {"X-MS-CLIENT-PRINCIPAL-ID": "bob"}
    assert call(deps, "list_models", headers=bob).status_code == 200
    now[0] = 1.5  # the 1-second window passed, the minute's has one request left
    assert call(deps, "list_models").status_code == 200
    assert call(deps, "list_models").status_code == 429
    assert int(call(deps, "list_models").headers["Retry-After"]) > 50


def test_registrations_in_progress_over_the_quota_get_429() -> None:
    queue = FakeJobQueue()
    deps = make_deps(make_settings(REGISTRY_DEV_MODE="true", REGISTRY_MAX_IN_PROGRESS="1"), queue=queue)
    assert put(deps, registration_body(), name="a").status_code == 202
    refused = put(deps, registration_body(), name="b")
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) > 0
    assert "REGISTRY_MAX_IN_PROGRESS" in json.loads(refused.get_body())["error_message"]
    assert len(queue.sent) == 1


# -- identity -------------------------------------------------------------------------------------


def test_without_a_trusted_identity_every_route_answers_401_and_the_log_says_why(
    caplog: pytest.LogCaptureFixture,
) -> None:
    in_azure_without_easy_auth = make_deps(make_settings(WEBSITE_INSTANCE_ID="abc"))
    for operation, route in ROUTES.items():
        if route.endpoint.anonymous:
            continue
        response = call(in_azure_without_easy_auth, operation, name="m", version="1", owner="alice", path="f")
        assert response.status_code == 401, operation
        assert response.headers["WWW-Authenticate"] == "Bearer"
    assert "WEBSITE_AUTH_ENABLED" in caplog.text


def test_behind_easy_auth_the_principal_headers_are_the_caller() -> None:
    behind_easy_auth = make_deps(make_settings(WEBSITE_INSTANCE_ID="abc", WEBSITE_AUTH_ENABLED="true"))
    assert call(behind_easy_auth, "list_models").status_code == 200


def test_the_openapi_document_is_served_without_a_caller() -> None:
    response = call(make_deps(), "openapi_document", headers={})
    assert response.status_code == 200
    assert json.loads(response.get_body())["openapi"].startswith("3.1")
