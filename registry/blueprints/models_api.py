"""HTTP functions: find, read, update, delete and clone models; the OpenAPI document."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import azure.functions as func

from registry import openapi
from registry.blueprints import responses
from registry.bootstrap import Dependencies
from registry.identity import Principal
from registry.records import DATA_TYPES, ModelFilter, ModelSummary, Registration
from registry.services import models as service
from registry.validation import FieldError, InvalidRequest

bp = func.Blueprint()
DOWNLOAD_TTL = timedelta(minutes=10)
MODEL_TYPES = ("ENCODER", "DECODER", "SEQ2SEQ")


# -- listing ------------------------------------------------------------------------------------


def _choice(params: dict[str, str], key: str, allowed: tuple[str, ...]) -> str | None:
    value = params.get(key)
    if value is not None and value not in allowed:
        raise InvalidRequest([FieldError(key, f"must be one of {', '.join(allowed)}")])
    return value


def _filters(params: dict[str, str]) -> ModelFilter:
    trainable = _choice(params, "trainable", ("true", "false"))
    return ModelFilter(
        name=params.get("name"),
        version=params.get("version"),
        owner=params.get("owner"),
        type=_choice(params, "type", MODEL_TYPES),
        trainable=None if trainable is None else trainable == "true",
        input_type=_choice(params, "input_type", DATA_TYPES),
        output_type=_choice(params, "output_type", DATA_TYPES),
        language=params.get("language"),
    )


def _item(summary: ModelSummary) -> dict[str, Any]:
    return {
        "name": summary.name,
        "version": summary.version,
        "owner": summary.owner,
        "owner_name": summary.owner_name,
        "organization": None,
        "type": summary.type,
        "description": summary.description,
        "private": summary.private,
        "state": summary.state,
        "trainable": summary.trainable,
        "parent_model": summary.parent_model,
    }


def _list(req: func.HttpRequest, deps: Dependencies, caller: Principal) -> func.HttpResponse:
    params = dict(req.params)
    unknown = sorted(set(params) - {*ModelFilter.__dataclass_fields__, "limit", "continuation"})
    if unknown:
        raise InvalidRequest([FieldError(name, "unknown query parameter") for name in unknown])
    raw_limit = params.get("limit", str(service.DEFAULT_PAGE))
    if not raw_limit.isdigit():
        raise InvalidRequest([FieldError("limit", f"must be an integer from 1 to {service.MAX_PAGE}")])
    page = service.list_models(
        deps.store, caller, _filters(params), int(raw_limit), params.get("continuation") or None
    )
    headers = {}
    if page.continuation:
        query = urlencode({**params, "continuation": page.continuation})
        headers["Link"] = f'<{responses.absolute_url(req, "/api/v1.0/models")}?{query}>; rel="next"'
    items = [_item(m) for m in page.models]
    if "limit" not in params and "continuation" not in params:
        # A DeepDev client expects a bare array: it gets the first page; the Link header leads on.
        return responses.json_response(200, items, headers)
    return responses.json_response(200, {"models": items, "continuation": page.continuation}, headers)


@bp.route(route="v1.0/models", methods=["GET"])
def list_models(req: func.HttpRequest) -> func.HttpResponse:
    return responses.serve(req, _list)


# -- reading ------------------------------------------------------------------------------------


def _visible(req: func.HttpRequest, deps: Dependencies, caller: Principal) -> Registration:
    """The model the path names, if the caller may see it (NotVisible otherwise)."""
    return service.find_visible(deps.store, caller, *responses.route_values(req, "name", "version", "owner"))


def _get(req: func.HttpRequest, deps: Dependencies, caller: Principal) -> func.HttpResponse:
    registration = _visible(req, deps, caller)
    view = service.model_view(registration, service.files_of(deps.store, registration))
    return responses.json_response(200, view)


@bp.route(route="v1.0/model/{name}/{version}/{owner}", methods=["GET"])
def get_model(req: func.HttpRequest) -> func.HttpResponse:
    return responses.serve(req, _get)


def _index(req: func.HttpRequest, deps: Dependencies, caller: Principal) -> func.HttpResponse:
    registration = _visible(req, deps, caller)
    content = service.index_page(deps.copier, registration)
    if content is None:
        return func.HttpResponse(status_code=204)
    return func.HttpResponse(content, status_code=200, mimetype="text/markdown", charset="utf-8")


@bp.route(route="v1.0/model/{name}/{version}/{owner}/index", methods=["GET"])
def get_model_index(req: func.HttpRequest) -> func.HttpResponse:
    return responses.serve(req, _index)


def _file(req: func.HttpRequest, deps: Dependencies, caller: Principal) -> func.HttpResponse:
    registration = _visible(req, deps, caller)
    url = service.file_url(deps.copier, registration, req.route_params.get("path", ""), DOWNLOAD_TTL)
    # The SAS is the caller's to use: it goes in Location only, never in a log or a body.
    return func.HttpResponse(status_code=302, headers={"Location": url, "Cache-Control": "no-store"})


@bp.route(route="v1.0/model/{name}/{version}/{owner}/files/{*path}", methods=["GET"])
def get_model_file(req: func.HttpRequest) -> func.HttpResponse:
    return responses.serve(req, _file)


# -- changing -----------------------------------------------------------------------------------


def _update(req: func.HttpRequest, deps: Dependencies, caller: Principal) -> func.HttpResponse:
    name, version = responses.route_values(req, "name", "version")
    body = responses.json_body(req, deps.settings.max_body_bytes)
    registration = service.update_model(
        body=body,
        name=name,
        version=version,
        caller=caller,
        store=deps.store,
        queue=deps.queue,
        sealer=deps.sealer,
        settings=deps.settings,
    )
    return responses.json_response(200, {"message": f"Updated {name} {version}: {registration.message}"})


@bp.route(route="v1.0/model/{name}/{version}", methods=["PATCH"])
def update_model(req: func.HttpRequest) -> func.HttpResponse:
    return responses.serve(req, _update)


def _delete(req: func.HttpRequest, deps: Dependencies, caller: Principal) -> func.HttpResponse:
    name, version = responses.route_values(req, "name", "version")
    service.delete_model(name=name, version=version, caller=caller, store=deps.store, files=deps.copier)
    return responses.json_response(200, {"message": f"Deleted {name} {version}"})


@bp.route(route="v1.0/model/{name}/{version}", methods=["DELETE"])
def delete_model(req: func.HttpRequest) -> func.HttpResponse:
    return responses.serve(req, _delete)


def _clone(req: func.HttpRequest, deps: Dependencies, caller: Principal) -> func.HttpResponse:
    name, version = responses.route_values(req, "name", "version")
    body = responses.json_body(req, deps.settings.max_body_bytes)
    registration = service.clone_model(
        body=body,
        name=name,
        version=version,
        caller=caller,
        store=deps.store,
        queue=deps.queue,
        files=deps.copier,
        sealer=deps.sealer,
        settings=deps.settings,
    )
    return responses.accepted(req, registration, "Clone")


@bp.route(route="v1.0/model/clone/{name}/{version}", methods=["PUT"])
def clone_model(req: func.HttpRequest) -> func.HttpResponse:
    return responses.serve(req, _clone)


@bp.route(route="v1.0/openapi.json", methods=["GET"])
def openapi_document(req: func.HttpRequest) -> func.HttpResponse:
    return responses.json_response(200, openapi.document(responses.absolute_url(req, "/api/v1.0")))
