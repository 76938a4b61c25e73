"""HTTP functions: find, read, update, delete and clone models; the OpenAPI document."""

from __future__ import annotations

import base64

import azure.functions as func

from registry.blueprints import openapi, registration_api, views
from registry.blueprints.api_models import (
    HistoryPageResponse,
    HistoryQuery,
    ListQuery,
    ManifestList,
    ManifestQuery,
    ManifestResponse,
    MessageResponse,
    ModelListItem,
    ModelPage,
    ModelResponse,
    SigningKeys,
)
from registry.blueprints.http import (
    Answer,
    Api,
    Endpoint,
    Reply,
    Route,
    absolute_url,
    json_body,
    next_link,
    not_found,
    query,
    route_values,
)
from registry.blueprints.registration_api import ACCEPTED, accepted
from registry.domain.listing import ModelFilter
from registry.domain.model import ModelKey, Registration
from registry.identity import Principal
from registry.services import history, manifests
from registry.services import models as service
from registry.services.dependencies import Dependencies
from registry.validation import CloneRequest, UpdateRequest

api = Api()
bp = api.blueprint
_LIST_ANSWER = {
    "oneOf": [
        {"type": "array", "items": {"$ref": "#/components/schemas/ModelListItem"}},
        {"$ref": "#/components/schemas/ModelPage"},
    ]
}


def _visible(req: func.HttpRequest, deps: Dependencies, caller: Principal) -> Registration:
    """The model the path names, if the caller may see it (NotVisible otherwise)."""
    name, version, owner = route_values(req, "name", "version", "owner")
    return service.find_visible(deps, caller, name, version, owner)


@api.route(
    "GET",
    "v1.0/models",
    Endpoint(
        summary="List the models the caller may see",
        answers={
            200: Answer(
                "Without limit/continuation a bare array (the first page); otherwise a page. The Link header "
                "(rel=next) leads to the next page.",
                schema=_LIST_ANSWER,
                refs=(ModelListItem, ModelPage),
                headers=("Link",),
            )
        },
        errors=(400, 503),
        query=ListQuery,
    ),
)
def list_models(req: func.HttpRequest, deps: Dependencies, caller: Principal) -> Reply:
    params: ListQuery = query(req, ListQuery)
    filters = ModelFilter(**params.model_dump(exclude={"limit", "continuation"}))
    page = service.list_models(
        deps, caller, filters, params.limit or service.DEFAULT_PAGE, params.continuation
    )
    headers = next_link(req, "/api/v1.0/models", page.continuation)
    items = [views.list_item(m) for m in page.models]
    if params.limit is None and params.continuation is None:
        # A DeepDev client expects a bare array: it gets the first page; the Link header leads on.
        return Reply(200, items, headers)
    return Reply(200, ModelPage(models=items, continuation=page.continuation), headers)


@api.route(
    "GET",
    "v1.0/model/{name}/{version}/{owner}",
    Endpoint(
        summary="A model's properties",
        answers={200: Answer("The model", ModelResponse)},
        errors=(400, 404, 503),
    ),
)
def get_model(req: func.HttpRequest, deps: Dependencies, caller: Principal) -> Reply:
    registration = _visible(req, deps, caller)
    return Reply(200, views.model(registration, service.files_of(deps, registration)))


@api.route(
    "GET",
    "v1.0/model/{name}/{version}/{owner}/index",
    Endpoint(
        summary="A model's index page",
        answers={
            200: Answer("The index page", schema={"type": "string"}, media_type="text/markdown"),
            204: Answer("No index page yet"),
        },
        errors=(400, 404, 503),
    ),
)
def get_model_index(req: func.HttpRequest, deps: Dependencies, caller: Principal) -> Reply:
    content = service.index_page(deps, _visible(req, deps, caller))
    if content is None:
        return Reply(204)
    return Reply(200, content=content, mimetype="text/markdown")


@api.route(
    "GET",
    "v1.0/model/{name}/{version}/{owner}/manifest",
    Endpoint(
        summary="A revision of the model's files (the latest by default), verified and signed",
        answers={200: Answer("The manifest, with its signature", ManifestResponse)},
        errors=(400, 404, 503),
        query=ManifestQuery,
    ),
)
def get_manifest(req: func.HttpRequest, deps: Dependencies, caller: Principal) -> Reply:
    params: ManifestQuery = query(req, ManifestQuery)
    found = manifests.revision(deps, _visible(req, deps, caller), params.revision)
    if found is None:
        return not_found("that manifest revision")
    return Reply(200, views.manifest(found))


@api.route(
    "GET",
    "v1.0/model/{name}/{version}/{owner}/manifests",
    Endpoint(
        summary="Every manifest revision of the model: revision, digest, when, by whom",
        answers={200: Answer("The revisions, newest first", ManifestList)},
        errors=(400, 404, 503),
    ),
)
def list_manifests(req: func.HttpRequest, deps: Dependencies, caller: Principal) -> Reply:
    registration = _visible(req, deps, caller)
    return Reply(200, views.manifest_list(manifests.revisions(deps, registration)))


@api.route(
    "GET",
    "v1.0/model/{name}/{version}/{owner}/history",
    Endpoint(
        summary="Every change of the model: who, when, what, before and after (newest first)",
        answers={
            200: Answer(
                "One page of the history; its owner reads it also after deleting the model",
                HistoryPageResponse,
                headers=("Link",),
            )
        },
        errors=(400, 404, 503),
        query=HistoryQuery,
    ),
)
def get_history(req: func.HttpRequest, deps: Dependencies, caller: Principal) -> Reply:
    params: HistoryQuery = query(req, HistoryQuery)
    name, version, owner = route_values(req, "name", "version", "owner")
    page = history.model_history(
        deps,
        caller,
        ModelKey(owner, name, version),
        params.limit or history.DEFAULT_PAGE,
        params.continuation,
    )
    headers = next_link(req, f"/api/v1.0/model/{name}/{version}/{owner}/history", page.continuation)
    return Reply(200, views.history_page(page.events, page.continuation), headers)


@api.route(
    "GET",
    "v1.0/model/{name}/{version}/{owner}/files/{*path}",
    Endpoint(
        summary="Redirect to a short-lived read-only URL of a registered file",
        answers={
            302: Answer(
                "Location: a read-only URL valid for minutes; Repr-Digest: the file's SHA-256 (RFC 9530)",
                headers=("Location", "Repr-Digest"),
            )
        },
        errors=(400, 404, 503),
    ),
)
def get_model_file(req: func.HttpRequest, deps: Dependencies, caller: Principal) -> Reply:
    registration = _visible(req, deps, caller)
    link = service.file_url(deps, registration, req.route_params.get("path", ""), service.DOWNLOAD_TTL)
    # The SAS is the caller's to use: it goes in Location only, never in a log or a body.
    headers = {"Location": link.url, "Cache-Control": "no-store"}
    if link.sha256:  # RFC 9530: the digest of the representation the redirect leads to
        headers["Repr-Digest"] = f"sha-256=:{base64.b64encode(bytes.fromhex(link.sha256)).decode()}:"
    return Reply(302, headers=headers)


@api.route(
    "PATCH",
    "v1.0/model/{name}/{version}",
    Endpoint(
        summary="Update the caller's model",
        answers={200: Answer("Updated", MessageResponse)},
        errors=(400, 404, 409, 413, 415, 503),
        body=UpdateRequest,
    ),
)
def update_model(req: func.HttpRequest, deps: Dependencies, caller: Principal) -> Reply:
    name, version = route_values(req, "name", "version")
    registration = service.update_model(
        deps, caller, name, version, json_body(req, deps.settings.max_body_bytes)
    )
    return Reply(200, MessageResponse(message=f"Updated {name} {version}: {registration.message}"))


@api.route(
    "DELETE",
    "v1.0/model/{name}/{version}",
    Endpoint(
        summary="Delete the caller's model, its files and records",
        answers={200: Answer("Deleted", MessageResponse)},
        errors=(400, 404, 409, 503),
    ),
)
def delete_model(req: func.HttpRequest, deps: Dependencies, caller: Principal) -> Reply:
    name, version = route_values(req, "name", "version")
    service.delete_model(deps, caller, name, version)
    return Reply(200, MessageResponse(message=f"Deleted {name} {version}"))


@api.route(
    "PUT",
    "v1.0/model/clone/{name}/{version}",
    Endpoint(
        summary="Clone a visible model into a new one of the caller's",
        answers={202: ACCEPTED},
        errors=(400, 404, 409, 413, 415, 429, 503),
        body=CloneRequest,
    ),
)
def clone_model(req: func.HttpRequest, deps: Dependencies, caller: Principal) -> Reply:
    name, version = route_values(req, "name", "version")
    registration = service.clone_model(
        deps, caller, name, version, json_body(req, deps.settings.max_body_bytes)
    )
    return accepted(req, registration, "Clone")


@api.route(
    "GET",
    "v1.0/signing-keys",
    Endpoint(
        summary="The public keys manifests are signed with (the current one first, then earlier ones)",
        answers={200: Answer("JWKS, and each key as PEM", SigningKeys)},
        anonymous=True,
    ),
)
def signing_keys(req: func.HttpRequest, deps: Dependencies, caller: Principal) -> Reply:
    document = deps.signer.published_keys() if deps.signer is not None else {"keys": [], "pem": {}}
    return Reply(200, SigningKeys.model_validate(document), {"Cache-Control": "public, max-age=300"})


@api.route(
    "GET",
    "v1.0/openapi.json",
    Endpoint(
        summary="This document",
        answers={200: Answer("OpenAPI 3.1", schema={"type": "object"})},
        anonymous=True,
    ),
)
def openapi_document(req: func.HttpRequest, deps: Dependencies, caller: Principal) -> Reply:
    document = openapi.document_json(absolute_url(req, "/api/v1.0"), routes(), deps.settings)
    return Reply(200, content=document, mimetype="application/json")


def routes() -> tuple[Route, ...]:
    """Every HTTP route of the API (the OpenAPI document's paths)."""
    return (*registration_api.api.routes, *api.routes)
