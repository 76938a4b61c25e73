"""HTTP functions: register a model and read its registration status."""

from __future__ import annotations

from datetime import datetime

import azure.functions as func

from registry.blueprints import responses
from registry.bootstrap import Dependencies
from registry.identity import Principal
from registry.services import models
from registry.services.registration import register

bp = func.Blueprint()


def _register(req: func.HttpRequest, deps: Dependencies, caller: Principal) -> func.HttpResponse:
    name, version = responses.route_values(req, "name", "version")
    registration = register(
        body=responses.json_body(req, deps.settings.max_body_bytes),
        name=name,
        version=version,
        caller=caller,
        store=deps.store,
        queue=deps.queue,
        sealer=deps.sealer,
        settings=deps.settings,
    )
    return responses.accepted(req, registration, "Registration of")


@bp.route(route="v1.0/model/{name}/{version}", methods=["PUT"])
def register_model(req: func.HttpRequest) -> func.HttpResponse:
    return responses.serve(req, _register, conflict="Already registered")


def _timestamps(prefix: str, moment: datetime) -> dict[str, str]:
    return {
        f"{prefix}_timestamp": moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        f"{prefix}_time": moment.strftime("%Y-%m-%d %H:%M:%S UTC"),
    }


def _status(req: func.HttpRequest, deps: Dependencies, caller: Principal) -> func.HttpResponse:
    name, version = responses.route_values(req, "name", "version")
    try:
        registration = models.find_own(deps.store, caller, name, version)
    except models.NotVisible:
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
                {"name": f.target, "state": f.state.value, "bytes_copied": f.bytes_copied, "size": f.size}
                for f in models.files_of(deps.store, registration)
            ],
        },
    )


@bp.route(route="v1.0/model/{name}/{version}/status", methods=["GET"])
def registration_status(req: func.HttpRequest) -> func.HttpResponse:
    return responses.serve(req, _status)
