"""HTTP functions: register a model and read its registration status."""

from __future__ import annotations

import logging
from datetime import datetime

import azure.functions as func

from registry.blueprints import responses
from registry.bootstrap import dependencies
from registry.services import registration as service
from registry.validation import InvalidRequest, validate_identifiers

log = logging.getLogger(__name__)
bp = func.Blueprint()


def status_path(name: str, version: str) -> str:
    return f"/api/v1.0/model/{name}/{version}/status"


@bp.route(route="v1.0/model/{name}/{version}", methods=["PUT"])
def register_model(req: func.HttpRequest) -> func.HttpResponse:
    deps = dependencies()
    principal = responses.caller(req, deps.settings)
    if principal is None:
        return responses.unauthorized()
    try:
        body = responses.json_body(req, deps.settings.max_body_bytes)
    except responses.Refused as refused:
        return refused.response
    name, version = req.route_params["name"], req.route_params["version"]
    try:
        registration = service.register(
            body=body,
            name=name,
            version=version,
            caller=principal,
            store=deps.store,
            queue=deps.queue,
            sealer=deps.sealer,
            settings=deps.settings,
        )
    except InvalidRequest as problem:
        return responses.invalid(problem)
    except service.Conflict as conflict:
        return responses.error(409, "Already registered", str(conflict))
    except service.Unavailable as unavailable:
        log.warning("registration of %s/%s not accepted: %s", name, version, unavailable)
        return responses.error(503, "Service unavailable", str(unavailable))
    status_url = responses.absolute_url(req, status_path(registration.name, registration.version))
    return responses.json_response(
        202,
        {
            "message": f"Registration of {name} {version} accepted: {registration.state.value}",
            "status_url": status_url,
        },
        headers={"Location": status_url},
    )


def _timestamps(prefix: str, moment: datetime) -> dict[str, str]:
    return {
        f"{prefix}_timestamp": moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        f"{prefix}_time": moment.strftime("%Y-%m-%d %H:%M:%S UTC"),
    }


@bp.route(route="v1.0/model/{name}/{version}/status", methods=["GET"])
def registration_status(req: func.HttpRequest) -> func.HttpResponse:
    deps = dependencies()
    principal = responses.caller(req, deps.settings)
    if principal is None:
        return responses.unauthorized()
    name, version = req.route_params["name"], req.route_params["version"]
    try:
        validate_identifiers(name=name, version=version)
    except InvalidRequest as problem:
        return responses.invalid(problem)
    try:
        registration = service.find_own(deps.store, principal, name, version)
        files = deps.store.files(registration) if registration is not None else []
    except service.Unavailable as unavailable:
        return responses.error(503, "Service unavailable", str(unavailable))
    if registration is None:
        return responses.not_found(f"a registration of {name} {version}")
    return responses.json_response(
        200,
        {
            "name": registration.name,
            "version": registration.version,
            "owner": registration.owner,
            "state": registration.state.value,
            "message": registration.message,
            **_timestamps("start", registration.created_at),
            **_timestamps("last_updated", registration.updated_at),
            "files": [
                {"name": f.name, "state": f.state, "bytes_copied": f.bytes_copied, "size": f.size}
                for f in service.file_statuses(registration, files)
            ],
        },
    )
