"""HTTP plumbing shared by the HTTP functions: JSON responses, errors, the caller."""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import urlsplit

import azure.functions as func

from registry.identity import Principal, principal_from_headers
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
