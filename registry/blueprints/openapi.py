"""The OpenAPI 3.1 document, generated from the route table and the pydantic models the API
validates and answers with."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from registry.blueprints.api_models import ErrorResponse
from registry.blueprints.http import Route
from registry.settings import Settings
from registry.sources import LOOPBACK_HOSTS
from registry.validation import IDENTIFIER_PATTERN, SOURCE_URL_MARK

_REF = "#/components/schemas/{model}"
_PREFIX = "v1.0/"
_ERRORS = {
    400: "Invalid request: every violated field and rule",
    401: "No caller identity",
    404: "No such model visible to the caller",
    409: "Conflicts with the model's current state",
    413: "Body over 1 MiB, or more than storage holds",
    415: "Body is not JSON",
    429: "Over the rate limit or a quota: retry after Retry-After seconds",
    503: "Storage unavailable; nothing was changed",
}
_HEADERS = {
    "Location": "Where to go next",
    "Link": 'The next page: <url>; rel="next"',
    "Retry-After": "Seconds to wait before retrying",
    "Repr-Digest": "sha-256=:<base64>: of the file the redirect leads to (RFC 9530)",
    "WWW-Authenticate": "How to authenticate",
}
_PATH_PARAMETERS = {
    "name": ("Model name", {"type": "string", "pattern": IDENTIFIER_PATTERN}),
    "version": ("Model version", {"type": "string", "pattern": IDENTIFIER_PATTERN}),
    "owner": ("Owner's principal id", {"type": "string", "pattern": IDENTIFIER_PATTERN}),
    "path": ("The file's name in model_files (may hold '/')", {"type": "string", "minLength": 1}),
}


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": _REF.format(model=model.__name__)}


def _content(schema: dict[str, Any], media_type: str = "application/json") -> dict[str, Any]:
    return {media_type: {"schema": schema}}


def _headers(names: Iterable[str]) -> dict[str, Any]:
    return {name: {"description": _HEADERS[name], "schema": {"type": "string"}} for name in names}


def _path(route: Route) -> str:
    return "/" + route.path.removeprefix(_PREFIX).replace("{*", "{")


def _parameters(route: Route) -> list[dict[str, Any]]:
    parameters = []
    for name in re.findall(r"\{\*?(\w+)\}", route.path):
        description, schema = _PATH_PARAMETERS[name]
        parameters.append(
            {"name": name, "in": "path", "required": True, "description": description, "schema": schema}
        )
    if route.endpoint.query is not None:
        schema = route.endpoint.query.model_json_schema(ref_template=_REF)
        for name, field_schema in schema["properties"].items():
            field_schema = dict(field_schema)
            description = field_schema.pop("description", "")
            field_schema.pop("title", None)
            field_schema.pop("default", None)
            # A query parameter is either there with a value or absent: never null.
            options = [s for s in field_schema.pop("anyOf", [field_schema]) if s.get("type") != "null"]
            parameters.append(
                {
                    "name": name,
                    "in": "query",
                    "required": False,
                    "description": description,
                    "schema": options[0] if len(options) == 1 else {"anyOf": options},
                }
            )
    return parameters


def _answers(route: Route) -> dict[str, Any]:
    answers: dict[str, Any] = {}
    for status, answer in route.endpoint.answers.items():
        documented: dict[str, Any] = {"description": answer.description}
        if answer.model is not None:
            documented["content"] = _content(_ref(answer.model), answer.media_type)
        elif answer.schema is not None:
            documented["content"] = _content(dict(answer.schema), answer.media_type)
        if answer.headers:
            documented["headers"] = _headers(answer.headers)
        answers[str(status)] = documented
    endpoint = route.endpoint
    errors = endpoint.errors if endpoint.anonymous else (*endpoint.errors, 401, 429)
    for status in sorted(set(errors)):
        documented = {"description": _ERRORS[status], "content": _content(_ref(ErrorResponse))}
        if status == 429:
            documented["headers"] = _headers(["Retry-After"])
        if status == 401:
            documented["headers"] = _headers(["WWW-Authenticate"])
        answers[str(status)] = documented
    return answers


# Rules of the validation that JSON Schema cannot state (they compare a value with another part of
# the request, with the model as stored, or with what this API issued). A request the document
# calls valid is refused only by these, each named in the 400's errors[].rule.
RULES_BEYOND_THE_SCHEMA = {
    "must be a key of model_files": "entry_script, conda_env, index_page_file and images name model files",
    "must equal the": "model_config.name and .version, if given, equal the path's",
    "must be the caller": "model_config.owner, if given, is the caller",
    "is not a token this API issued": "continuation is a token this API issued to the caller",
    "was issued for other filters": "continuation is used with the filters it was issued for",
    "not files of the parent": "ignore_files name files of the parent",
    "a model has at most": "files the model has and the update adds count together",
    "_languages": "once merged with the model's metainfo, languages follow the data types",
    "at least one file is required": "a clone keeps at least one file",
    "at least one of conda_env or docker_image": "once merged with the parent's config",
    "reserved in a model directory": "file names start with none of model.sig, registry-manifest.json, .git*",
    "is a file and also the folder of": "no file is named like another file's folder",
}


def _operation(route: Route) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": route.operation_id,
        "summary": route.endpoint.summary,
        "parameters": _parameters(route),
        "responses": _answers(route),
    }
    if route.endpoint.body is not None:
        operation["requestBody"] = {"required": True, "content": _content(_ref(route.endpoint.body))}
    if route.endpoint.body is not None or route.endpoint.query is not None:
        operation["x-registry-rules"] = sorted(set(RULES_BEYOND_THE_SCHEMA.values()))
    if route.endpoint.anonymous:
        operation["security"] = []
    return operation


def paths(routes: Iterable[Route]) -> dict[str, Any]:
    result: dict[str, dict[str, Any]] = {}
    for route in routes:
        result.setdefault(_path(route), {})[route.method.lower()] = _operation(route)
    return result


def _models(routes: Iterable[Route]) -> list[tuple[type[BaseModel], str]]:
    found: dict[type[BaseModel], str] = {ErrorResponse: "serialization"}
    for route in routes:
        if route.endpoint.body is not None:
            found[route.endpoint.body] = "validation"
        for answer in route.endpoint.answers.values():
            for model in (answer.model, *answer.refs):
                if model is not None:
                    found.setdefault(model, "serialization")
    return list(found.items())


def schemas(routes: Iterable[Route], settings: Settings | None = None) -> dict[str, Any]:
    models = _models(routes)
    _, schema = models_json_schema(models, by_alias=True, ref_template=_REF)  # type: ignore[arg-type]
    found: dict[str, Any] = dict(schema.get("$defs", {}))
    requests = _reachable(found, {model.__name__ for model, mode in models if mode == "validation"})
    for name, definition in found.items():
        _refine(definition, settings, request=name in requests)
    return found


def _reachable(found: dict[str, Any], roots: set[str]) -> set[str]:
    """The definitions the roots refer to, directly or not (the request side of the document)."""
    seen, todo = set(), list(roots)
    while todo:
        name = todo.pop()
        if name not in seen and name in found:
            seen.add(name)
            todo += re.findall(r'"#/components/schemas/(\w+)"', json.dumps(found[name]))
    return seen


def _refine(node: Any, settings: Settings | None, *, request: bool) -> None:
    """What the generated schemas leave out: the deployment's source hosts and file limit; and, in
    requests, that an optional field is given with a value or left out (null is taken as absent)."""
    if isinstance(node, list):
        for item in node:
            _refine(item, settings, request=request)
        return
    if not isinstance(node, dict):
        return
    if request and "anyOf" in node and {"type": "null"} in node["anyOf"]:
        options = [o for o in node.pop("anyOf") if o != {"type": "null"}]
        node.pop("default", None)
        node.update(options[0] if len(options) == 1 else {"anyOf": options})
    if node.get(SOURCE_URL_MARK) and settings is not None:
        node["pattern"] = source_url_pattern(settings.allowed_source_hosts, settings.allow_insecure_sources)
    if node.get("x-model-files") and settings is not None:
        node["maxProperties"] = settings.quotas.max_files
    for value in node.values():
        _refine(value, settings, request=request)


def source_url_pattern(hosts: tuple[str, ...], local_emulator_ok: bool) -> str:
    """The source URLs the checks accept, as a pattern (a little stricter: lower-case hosts)."""
    label = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
    names = [
        rf"(?:{label}\.){{1,4}}{re.escape(h[2:])}" if h.startswith("*.") else re.escape(h) for h in hosts
    ]
    origins = [rf"https://(?:{'|'.join(names)})(?::443)?"] if names else []
    if local_emulator_ok:
        loopback = "|".join(re.escape(h) for h in sorted(LOOPBACK_HOSTS))
        origins.append(rf"https?://(?:{loopback})(?::[1-9][0-9]{{0,3}})?")
    byte = r"%(?:[2-6][0-9A-Fa-f]|7[0-9A-Ea-e]|[89A-Fa-f][0-9A-Fa-f])"
    path = rf"/(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/]|{byte})*"
    query = r"(?:\?(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/?]|%[0-9A-Fa-f]{2})*)?"
    return rf"^(?:{'|'.join(origins) or '(?!)'}){path}{query}$"


def document(server_url: str, routes: Iterable[Route], settings: Settings | None = None) -> dict[str, Any]:
    routes = list(routes)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Model registry", "version": "1.0"},
        "servers": [{"url": server_url}],
        "paths": paths(routes),
        "components": {
            "schemas": schemas(routes, settings),
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


_generated: dict[tuple[object, ...], str] = {}


def document_json(server_url: str, routes: tuple[Route, ...], settings: Settings) -> bytes:
    """The document as JSON (generated once per process; only the server URL differs)."""
    key = (*(route.operation_id for route in routes), id(settings))
    if key not in _generated:
        _generated[key] = json.dumps(document("{{server}}", routes, settings))
    return _generated[key].replace('"{{server}}"', json.dumps(server_url)).encode()
