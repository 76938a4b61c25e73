"""HTTP functions: register a model and read its registration status."""

from __future__ import annotations

import azure.functions as func

from registry.blueprints import views
from registry.blueprints.api_models import AcceptedResponse, StatusQuery, StatusResponse
from registry.blueprints.http import (
    Answer,
    Api,
    Endpoint,
    Reply,
    absolute_url,
    json_body,
    not_found,
    query,
    route_values,
)
from registry.domain.model import Registration
from registry.identity import Principal
from registry.services import models
from registry.services.dependencies import Dependencies
from registry.services.registration import register
from registry.validation import RegistrationRequest

api = Api()
bp = api.blueprint
ACCEPTED = Answer("Accepted: follow Location to the status", AcceptedResponse, headers=("Location",))


def status_path(name: str, version: str) -> str:
    return f"/api/v1.0/model/{name}/{version}/status"


def accepted(req: func.HttpRequest, registration: Registration, what: str) -> Reply:
    """202 for a registration whose copy was queued, pointing at its status."""
    status_url = absolute_url(req, status_path(registration.name, registration.version))
    message = f"{what} {registration.name} {registration.version} accepted: {registration.state.value}"
    return Reply(202, AcceptedResponse(message=message, status_url=status_url), {"Location": status_url})


@api.route(
    "PUT",
    "v1.0/model/{name}/{version}",
    Endpoint(
        summary="Register a model (the caller owns it)",
        answers={202: ACCEPTED},
        errors=(400, 409, 413, 415, 429, 503),
        body=RegistrationRequest,
        conflict="Already registered",
    ),
)
def register_model(req: func.HttpRequest, deps: Dependencies, caller: Principal) -> Reply:
    name, version = route_values(req, "name", "version")
    registration = register(deps, caller, name, version, json_body(req, deps.settings.max_body_bytes))
    return accepted(req, registration, "Registration of")


def _status_version(req: func.HttpRequest, deps: Dependencies, caller: Principal) -> str | None:
    """What changes whenever the status does: the record's ETag (every state change and every
    checkpoint of the copy writes it)."""
    name, version = route_values(req, "name", "version")
    return models.find_own(deps, caller, name, version).etag


@api.route(
    "GET",
    "v1.0/model/{name}/{version}/status",
    Endpoint(
        summary="The caller's registration status (?wait=N: as soon as it changes, or after N s)",
        answers={200: Answer("Status", StatusResponse)},
        errors=(400, 404, 503),
        query=StatusQuery,
        watch=_status_version,
    ),
)
def registration_status(req: func.HttpRequest, deps: Dependencies, caller: Principal) -> Reply:
    query(req, StatusQuery)  # the wait itself is served before (see serve_waiting)
    name, version = route_values(req, "name", "version")
    try:
        registration = models.find_own(deps, caller, name, version)
    except models.NotVisible:
        return not_found(f"a registration of {name} {version}")
    return Reply(200, views.status(registration, models.files_of(deps, registration)))
