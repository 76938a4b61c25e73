"""The OpenAPI 3.1 document, generated from the pydantic models the API validates and answers with."""

from __future__ import annotations

from functools import cache
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from registry import api_models as api
from registry.validation import CloneRequest, RegistrationRequest, UpdateRequest

_REF = "#/components/schemas/{model}"
_ERRORS = {
    "400": "Invalid request: every violated field and rule",
    "401": "No caller identity",
    "404": "No such model visible to the caller",
    "409": "Conflicts with the model's current state",
    "413": "Body over 1 MiB",
    "415": "Body is not JSON",
    "503": "Storage unavailable; nothing was changed",
}


def _path_parameter(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": {"type": "string"},
    }


def _query(name: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema or {"type": "string"},
    }


NAME = _path_parameter("name", "Model name")
VERSION = _path_parameter("version", "Model version")
OWNER = _path_parameter("owner", "Owner's principal id")
DATA_TYPE = {"type": "string", "enum": ["SOURCE_CODE", "NATURAL_LANGUAGE", "CLASS_LABEL", "OTHER"]}


def _json(model: type[BaseModel] | str) -> dict[str, Any]:
    name = model if isinstance(model, str) else model.__name__
    return {"application/json": {"schema": {"$ref": _REF.format(model=name)}}}


def _operation(
    operation_id: str,
    summary: str,
    parameters: list[dict[str, Any]],
    responses: dict[str, Any],
    errors: tuple[str, ...],
    body: type[BaseModel] | None = None,
) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": operation_id,
        "summary": summary,
        "parameters": parameters,
        "responses": responses
        | {
            code: {"description": _ERRORS[code], "content": _json(api.ErrorResponse)}
            for code in ("401", *errors)
        },
    }
    if body is not None:
        operation["requestBody"] = {"required": True, "content": _json(body)}
    return operation


def _ok(description: str, model: type[BaseModel] | None = None, **extra: Any) -> dict[str, Any]:
    return {"description": description, **({"content": _json(model)} if model else {}), **extra}


def _paths() -> dict[str, Any]:
    accepted = _ok(
        "Accepted: follow Location to the status",
        api.AcceptedResponse,
        headers={"Location": {"schema": {"type": "string"}}},
    )
    listing = [
        _query("name", "Only this name"),
        _query("version", "Only this version"),
        _query("owner", "Only this owner (principal id)"),
        _query(
            "type", "Only this architecture", {"type": "string", "enum": ["ENCODER", "DECODER", "SEQ2SEQ"]}
        ),
        _query(
            "trainable", "Only models with (true) or without (false) training_properties", {"type": "boolean"}
        ),
        _query("input_type", "Only models taking this type of input", DATA_TYPE),
        _query("output_type", "Only models producing this type of output", DATA_TYPE),
        _query("language", "Only models with this input or output language"),
        _query(
            "limit",
            "Page size (default 100); given, the answer is a page object",
            {"type": "integer", "minimum": 1, "maximum": 1000},
        ),
        _query("continuation", "The token of the previous page"),
    ]
    array_or_page = {
        "description": "Without limit/continuation a bare array (the first page); otherwise a page. "
        "The Link header (rel=next) leads to the next page.",
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [
                        {"type": "array", "items": {"$ref": _REF.format(model="ModelListItem")}},
                        {"$ref": _REF.format(model="ModelPage")},
                    ]
                }
            }
        },
    }
    return {
        "/models": {
            "get": _operation(
                "list_models",
                "List the models the caller may see",
                listing,
                {"200": array_or_page},
                ("400", "503"),
            )
        },
        "/model/{name}/{version}": {
            "put": _operation(
                "register_model",
                "Register a model (the caller owns it)",
                [NAME, VERSION],
                {"202": accepted},
                ("400", "409", "413", "415", "503"),
                RegistrationRequest,
            ),
            "patch": _operation(
                "update_model",
                "Update the caller's model",
                [NAME, VERSION],
                {"200": _ok("Updated", api.MessageResponse)},
                ("400", "404", "409", "413", "415", "503"),
                UpdateRequest,
            ),
            "delete": _operation(
                "delete_model",
                "Delete the caller's model, its files and records",
                [NAME, VERSION],
                {"200": _ok("Deleted", api.MessageResponse)},
                ("404", "409", "503"),
            ),
        },
        "/model/{name}/{version}/status": {
            "get": _operation(
                "registration_status",
                "The caller's registration status",
                [NAME, VERSION],
                {"200": _ok("Status", api.StatusResponse)},
                ("400", "404", "503"),
            ),
        },
        "/model/{name}/{version}/{owner}": {
            "get": _operation(
                "get_model",
                "A model's properties",
                [NAME, VERSION, OWNER],
                {"200": _ok("The model", api.ModelResponse)},
                ("400", "404", "503"),
            ),
        },
        "/model/{name}/{version}/{owner}/index": {
            "get": _operation(
                "get_model_index",
                "A model's index page",
                [NAME, VERSION, OWNER],
                {
                    "200": {
                        "description": "The index page",
                        "content": {"text/markdown": {"schema": {"type": "string"}}},
                    },
                    "204": {"description": "No index page yet"},
                },
                ("400", "404", "503"),
            ),
        },
        "/model/{name}/{version}/{owner}/files/{path}": {
            "get": _operation(
                "get_model_file",
                "Redirect to a short-lived read-only URL of a registered file",
                [
                    NAME,
                    VERSION,
                    OWNER,
                    _path_parameter("path", "The file's name in model_files (may hold '/')"),
                ],
                {
                    "302": {
                        "description": "Location: a read-only URL valid for minutes",
                        "headers": {"Location": {"schema": {"type": "string"}}},
                    }
                },
                ("400", "404", "503"),
            ),
        },
        "/model/clone/{name}/{version}": {
            "put": _operation(
                "clone_model",
                "Clone a visible model into a new one of the caller's",
                [NAME, VERSION],
                {"202": accepted},
                ("400", "404", "409", "413", "415", "503"),
                CloneRequest,
            ),
        },
        "/openapi.json": {
            "get": _operation(
                "openapi_document",
                "This document",
                [],
                {
                    "200": {
                        "description": "OpenAPI 3.1",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    }
                },
                (),
            ),
        },
    }


@cache
def _schemas() -> dict[str, Any]:
    models: list[type[BaseModel]] = [
        RegistrationRequest, UpdateRequest, CloneRequest, api.ErrorResponse, api.MessageResponse,
        api.AcceptedResponse, api.StatusResponse, api.ModelListItem, api.ModelPage, api.ModelResponse,
    ]  # fmt: skip
    _, schema = models_json_schema(
        [
            (
                model,
                "validation"
                if model in (RegistrationRequest, UpdateRequest, CloneRequest)
                else "serialization",
            )
            for model in models
        ],
        by_alias=True,
        ref_template=_REF,
    )
    return dict(schema.get("$defs", {}))


def document(server_url: str) -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "Model registry", "version": "1.0"},
        "servers": [{"url": server_url}],
        "paths": _paths(),
        "components": {
            "schemas": _schemas(),
            "securitySchemes": {
                "entraId": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A Microsoft Entra ID token; App Service Authentication passes the caller",
                }
            },
        },
        "security": [{"entraId": []}],
    }
