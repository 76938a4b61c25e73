"""HTTP plumbing shared by the HTTP functions: the caller, error mapping, JSON responses."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import azure.functions as func

from registry.bootstrap import Dependencies, dependencies
from registry.identity import Principal, principal_from_headers
from registry.records import Registration
from registry.services.models import NotVisible
from registry.services.registration import Conflict, Unavailable
from registry.settings import Settings
from registry.validation import InvalidRequest

log = logging.getLogger(__name__)


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> func.HttpResponse:
    return func.HttpResponse(
        json.dumps(body), status_code=status, headers=headers, mimetype="application/json", charset="utf-8"
    )


def error(status: int, message: str, error_message: str, **extra: Any) -> func.HttpResponse:
    return json_response(status, {"message": message, "error_message": error_message, **extra})


def invalid(problem: InvalidRequest) -> func.HttpResponse:
    return error(
        400,
        "Invalid request",
        str(problem),
        errors=[{"field": e.field, "rule": e.rule} for e in problem.errors],
    )


def not_found(what: str) -> func.HttpResponse:
    return error(404, "Not found", f"{what} does not exist or is not visible to you")


def unauthorized() -> func.HttpResponse:
    response = error(401, "Unauthorized", "sign in: this API needs a caller identity")
    response.headers["WWW-Authenticate"] = "Bearer"
    return response


def caller(req: func.HttpRequest, settings: Settings) -> Principal | None:
    return principal_from_headers(req.headers, trusted=settings.trusts_principal_headers)


class Refused(Exception):
    """A request refused before its body is looked at (413, 415); `response` says why."""

    def __init__(self, response: func.HttpResponse) -> None:
        super().__init__(response.status_code)
        self.response = response


def json_body(req: func.HttpRequest, max_bytes: int) -> Any:
    """The decoded JSON body; Refused (413/415) if it is too large or not JSON."""
    declared = req.headers.get("content-length")
    body = req.get_body()
    if (declared and declared.isdigit() and int(declared) > max_bytes) or len(body) > max_bytes:
        raise Refused(error(413, "Request too large", f"the body must be at most {max_bytes} bytes"))
    content_type = (req.headers.get("content-type") or "application/json").split(";")[0].strip().lower()
    if content_type != "application/json" and not content_type.endswith("+json"):
        raise Refused(
            error(415, "Unsupported media type", "the body must be JSON (Content-Type: application/json)")
        )
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as problem:
        raise Refused(
            error(415, "Unsupported media type", f"the body is not valid JSON: {problem}")
        ) from None


def absolute_url(req: func.HttpRequest, path: str) -> str:
    parts = urlsplit(req.url)
    return f"{parts.scheme}://{parts.netloc}{path}"


Handler = Callable[[func.HttpRequest, Dependencies, Principal], func.HttpResponse]


def serve(req: func.HttpRequest, handler: Handler, *, conflict: str = "Conflict") -> func.HttpResponse:
    """Identity first, then the handler, with the registry's errors mapped to statuses in one place."""
    deps = dependencies()
    principal = caller(req, deps.settings)
    if principal is None:
        return unauthorized()
    try:
        return handler(req, deps, principal)
    except InvalidRequest as problem:
        return invalid(problem)
    except NotVisible:
        return not_found("the model")
    except Conflict as refused:
        return error(409, conflict, str(refused))
    except Unavailable as unavailable:
        log.warning("%s %s not served: %s", req.method, urlsplit(req.url).path, unavailable)
        return error(503, "Service unavailable", str(unavailable))
    except Refused as refused:
        return refused.response


def route_values(req: func.HttpRequest, *names: str) -> list[str]:
    return [req.route_params[name] for name in names]


def status_path(name: str, version: str) -> str:
    return f"/api/v1.0/model/{name}/{version}/status"


def accepted(req: func.HttpRequest, registration: Registration, what: str) -> func.HttpResponse:
    """202 for a registration whose copy was queued, pointing at its status."""
    status_url = absolute_url(req, status_path(registration.name, registration.version))
    message = f"{what} {registration.name} {registration.version} accepted: {registration.state.value}"
    return json_response(
        202, {"message": message, "status_url": status_url}, headers={"Location": status_url}
    )
