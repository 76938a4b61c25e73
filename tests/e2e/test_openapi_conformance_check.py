"""The conformance check the end-to-end tests run on every answer: it refuses what the document
does not say (so its silence on the e2e suite means something), and accepts what it says."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from registry.blueprints import models_api, openapi
from tests.e2e.openapi_conformance import Conformance

BASE = "/api/v1.0"
ITEM = {
    "name": "m",
    "version": "1",
    "owner": "alice",
    "owner_name": "Alice",
    "type": "DECODER",
    "description": "d",
    "private": False,
    "state": "Finished",
    "trainable": False,
}


@pytest.fixture(scope="module")
def conformance() -> Conformance:
    return Conformance(openapi.document("http://localhost" + BASE, models_api.routes()), BASE)


def _answer(
    status: int, body: Any = None, content_type: str = "application/json", text: str = ""
) -> httpx.Response:
    content = json.dumps(body).encode() if body is not None else text.encode()
    headers = {"Content-Type": content_type} if content else {}
    return httpx.Response(status, headers=headers, content=content)


@pytest.mark.parametrize(
    ("method", "path", "answer"),
    [
        ("GET", "/models", _answer(200, [ITEM])),
        ("GET", "/models", _answer(200, {"models": [ITEM], "continuation": None})),
        (
            "GET",
            "/models",
            _answer(200, [{**ITEM, "parent_model": {"name": "p", "version": "1", "owner": "o"}}]),
        ),
        (
            "GET",
            "/models",
            _answer(400, {"message": "m", "error_message": "e", "errors": [{"field": "f", "rule": "r"}]}),
        ),
        ("GET", "/model/m/1/status", _answer(404, {"message": "m", "error_message": "e"})),
        (
            "GET",
            "/model/m/1/alice/index",
            _answer(200, content_type="text/markdown; charset=utf-8", text="# m"),
        ),
        ("GET", "/model/m/1/alice/index", _answer(204)),
        ("GET", "/model/m/1/alice/files/dir/weights.bin", _answer(302)),
        ("DELETE", "/model/m/1", _answer(200, {"message": "Deleted m 1"})),
    ],
)
def test_what_the_document_says_passes(
    conformance: Conformance, method: str, path: str, answer: httpx.Response
) -> None:
    _, problems = conformance.problems(method, BASE + path, answer)

    assert problems == []


@pytest.mark.parametrize(
    ("method", "path", "answer", "operation", "problem"),
    [
        ("GET", "/models", _answer(200, [{**ITEM, "organization": None}]), "list_models", "organization"),
        ("GET", "/models", _answer(200, [{**ITEM, "parent_model": None}]), "list_models", "parent_model"),
        ("GET", "/models", _answer(200, [{**ITEM, "type": "GPT"}]), "list_models", "type"),
        ("GET", "/models", _answer(200, {"models": [ITEM]}), "list_models", "continuation"),
        ("GET", "/models", _answer(418, {"message": "m", "error_message": "e"}), "list_models", "status 418"),
        (
            "GET",
            "/models",
            _answer(200, [ITEM], content_type="text/plain"),
            "list_models",
            "Content-Type text/plain",
        ),
        ("GET", "/model/m/1/alice", _answer(200, {"name": "m"}), "get_model", "required property"),
        ("GET", "/model/m/1/status", _answer(404, {"message": "m"}), "registration_status", "error_message"),
        (
            "GET",
            "/model/m/1/alice/index",
            _answer(204, text="x", content_type="text/plain"),
            "get_model_index",
            "no body",
        ),
        ("PUT", "/model/m/1", _answer(202, {"message": "m"}), "register_model", "status_url"),
        ("POST", "/model/m/1", _answer(200, {}), "POST /api/v1.0/model/m/1", "no operation"),
        ("GET", "/nowhere", _answer(404), "GET /api/v1.0/nowhere", "no operation"),
    ],
)
def test_what_the_document_does_not_say_is_named_with_its_operation(
    conformance: Conformance, method: str, path: str, answer: httpx.Response, operation: str, problem: str
) -> None:
    named, problems = conformance.problems(method, BASE + path, answer)

    assert named.startswith(operation)
    assert any(problem in p for p in problems), problems


def test_literal_segments_win_over_parameters(conformance: Conformance) -> None:
    status = conformance.operation("GET", BASE + "/model/m/1/status")
    model = conformance.operation("GET", BASE + "/model/m/1/alice")
    clone = conformance.operation("PUT", BASE + "/model/clone/m/1")

    assert status is not None and status.spec["operationId"] == "registration_status"
    assert model is not None and model.spec["operationId"] == "get_model"
    assert clone is not None and clone.spec["operationId"] == "clone_model"
