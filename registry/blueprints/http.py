"""HTTP plumbing shared by the HTTP functions: one route table, the caller, admission, error
mapping and JSON answers.

Each HTTP function is declared once, with `Api.route`: that registers it with its blueprint (the
Functions host indexes it from there) and records what it takes and answers, from which the
OpenAPI document is generated. Handlers take the request, the dependencies and the caller, and
answer with a `Reply` holding a pydantic response model; `serve` does the rest.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

import azure.functions as func
from pydantic import BaseModel, ValidationError

from registry.blueprints.api_models import ErrorResponse, FieldRule
from registry.bootstrap import dependencies
from registry.identity import Principal, principal_from_headers
from registry.services.dependencies import Dependencies
from registry.services.models import NotVisible
from registry.services.registration import Conflict, TooLarge, TooMany, Unavailable
from registry.services.webhooks import Missing
from registry.validation import MAX_JSON_DEPTH, FieldError, InvalidRequest, field_errors, json_depth

log = logging.getLogger(__name__)

Body = BaseModel | Sequence[BaseModel] | None


@dataclass
class Reply:
    """What a handler answers: a status, a response model (or raw content), and headers."""

    status: int
    body: Body = None
    headers: dict[str, str] = field(default_factory=dict)
    content: bytes | None = None
    mimetype: str = "application/json"


Handler = Callable[[func.HttpRequest, Dependencies, Principal], Reply]
Watch = Callable[[func.HttpRequest, Dependencies, Principal], str | None]
MAX_WAIT_SECONDS = 60


@dataclass(frozen=True)
class Answer:
    """One documented answer of a route: its description and body (a model, or a raw schema)."""

    description: str
    model: type[BaseModel] | None = None
    schema: Mapping[str, Any] | None = None
    refs: tuple[type[BaseModel], ...] = ()  # models a raw schema refers to
    media_type: str = "application/json"
    headers: tuple[str, ...] = ()


@dataclass(frozen=True)
class Endpoint:
    """What a route takes and answers (the OpenAPI document is generated from it)."""

    summary: str
    answers: Mapping[int, Answer]
    errors: tuple[int, ...] = ()
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    anonymous: bool = False  # served without a caller (the OpenAPI document itself)
    conflict: str = "Conflict"  # the 409 answer's message
    # Long polling: with ?wait=N the answer waits until this (a version of what the handler
    # would answer) changes, or N seconds pass.
    watch: Watch | None = None


@dataclass(frozen=True)
class Route:
    operation_id: str
    method: str
    path: str  # the Functions route template, under the host's "api" prefix
    handler: Handler
    endpoint: Endpoint


class Api:
    """A blueprint whose HTTP functions are also a route table."""

    def __init__(self) -> None:
        self.blueprint = func.Blueprint()
        self.routes: list[Route] = []

    def route(self, method: str, path: str, endpoint: Endpoint) -> Callable[[Handler], Handler]:
        def declare(handler: Handler) -> Handler:
            route = Route(handler.__name__, method, path, handler, endpoint)

            def entry(req: func.HttpRequest) -> func.HttpResponse:
                return serve(req, route)

            async def waiting_entry(req: func.HttpRequest) -> func.HttpResponse:
                return await serve_waiting(req, route)

            function = waiting_entry if endpoint.watch is not None else entry
            function.__name__ = function.__qualname__ = route.operation_id
            self.blueprint.function_name(route.operation_id)(
                self.blueprint.route(route=path, methods=[method])(function)
            )
            self.routes.append(route)
            return handler

        return declare


# -- answers ------------------------------------------------------------------------------------


def _dump(body: Body) -> Any:
    if isinstance(body, Sequence):
        return [item.model_dump(mode="json", by_alias=True) for item in body]
    return body.model_dump(mode="json", by_alias=True) if body is not None else None


def respond(reply: Reply) -> func.HttpResponse:
    if reply.content is not None:
        return func.HttpResponse(
            reply.content,
            status_code=reply.status,
            headers=reply.headers,
            mimetype=reply.mimetype,
            charset="utf-8",
        )
    if reply.body is None:
        return func.HttpResponse(status_code=reply.status, headers=reply.headers)
    return func.HttpResponse(
        json.dumps(_dump(reply.body)),
        status_code=reply.status,
        headers=reply.headers,
        mimetype="application/json",
        charset="utf-8",
    )


def error(
    status: int,
    message: str,
    error_message: str,
    errors: list[FieldError] | None = None,
    headers: dict[str, str] | None = None,
) -> Reply:
    rules = [FieldRule(field=e.field, rule=e.rule) for e in errors] if errors is not None else None
    body = ErrorResponse(message=message, error_message=error_message, errors=rules)
    return Reply(status, body, dict(headers or {}))


def not_found(what: str) -> Reply:
    return error(404, "Not found", f"{what} does not exist or is not visible to you")


def next_link(req: func.HttpRequest, path: str, continuation: str | None) -> dict[str, str]:
    """The Link header (rel=next) to the following page: this request's query, the new token."""
    if not continuation:
        return {}
    given = {k: v for k, v in req.params.items() if k != "continuation"}
    next_query = urlencode({**given, "continuation": continuation})
    return {"Link": f'<{absolute_url(req, path)}?{next_query}>; rel="next"'}


def absolute_url(req: func.HttpRequest, path: str) -> str:
    parts = urlsplit(req.url)
    return f"{parts.scheme}://{parts.netloc}{path}"


# -- requests -----------------------------------------------------------------------------------


class Refused(Exception):
    """A request refused before its body is looked at (413, 415); `reply` says why."""

    def __init__(self, reply: Reply) -> None:
        super().__init__(reply.status)
        self.reply = reply


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
    too_deep = InvalidRequest([FieldError("body", f"must not nest deeper than {MAX_JSON_DEPTH} levels")])
    try:
        value = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise Refused(error(415, "Unsupported media type", "the body is not valid JSON")) from None
    except RecursionError:
        raise too_deep from None
    if json_depth(value) > MAX_JSON_DEPTH:
        raise too_deep
    return value


def query(req: func.HttpRequest, model: type[BaseModel]) -> Any:
    """The query string as `model`; InvalidRequest naming each bad or unknown parameter."""
    try:
        return model.model_validate(dict(req.params))
    except ValidationError as problem:
        errors = [
            FieldError(e.field, "unknown query parameter" if e.rule == "unknown field" else e.rule)
            for e in field_errors(problem)
        ]
        raise InvalidRequest(errors) from None


def route_values(req: func.HttpRequest, *names: str) -> list[str]:
    return [req.route_params.get(name, "") for name in names]


def caller_of(req: func.HttpRequest, deps: Dependencies) -> Principal | None:
    return principal_from_headers(req.headers, trusted=deps.settings.trusts_principal_headers)


def _unauthorized(deps: Dependencies) -> Reply:
    problem = deps.settings.identity_problem
    if problem:
        log.error("request refused: no caller can be trusted here: %s", problem)
    return error(
        401,
        "Unauthorized",
        "sign in: this API needs a caller identity",
        headers={"WWW-Authenticate": "Bearer"},
    )


def serve(req: func.HttpRequest, route: Route, deps: Dependencies | None = None) -> func.HttpResponse:
    """Identity and admission first, then the handler, with the registry's errors mapped to
    statuses in one place."""
    deps = deps or dependencies()
    caller = _admitted(req, route, deps)
    if isinstance(caller, Reply):
        return respond(caller)
    return respond(_handle(req, route, deps, caller))


def _admitted(req: func.HttpRequest, route: Route, deps: Dependencies) -> Principal | Reply:
    """The caller, or the answer that turns the request away (401, 429)."""
    principal = caller_of(req, deps)
    if principal is None:
        return Principal("anonymous", "anonymous") if route.endpoint.anonymous else _unauthorized(deps)
    wait = deps.admission.retry_after(principal.id)
    if wait is not None:
        return error(
            429,
            "Too many requests",
            f"the rate limit was reached; retry in {wait} s",
            headers={"Retry-After": str(wait)},
        )
    return principal


# Long polling: the first look after this, then twice as long each time, up to the longest.
FIRST_LOOK_SECONDS = 0.5
LONGEST_LOOK_SECONDS = 4.0


async def serve_waiting(
    req: func.HttpRequest, route: Route, deps: Dependencies | None = None
) -> func.HttpResponse:
    """`serve`, after waiting (?wait=N seconds) until what the route answers changes.

    The wait is asynchronous: the event loop sleeps between looks, each look (one storage read)
    runs briefly on a pool thread, so a waiting request holds no worker thread.
    """
    deps = deps or dependencies()
    caller = await asyncio.to_thread(_admitted, req, route, deps)
    if isinstance(caller, Reply):
        return respond(caller)
    watch = route.endpoint.watch
    seconds = wait_seconds(req)
    if watch is not None and seconds:
        await until_changed(lambda: _quietly(watch, req, deps, caller), seconds)
    return await asyncio.to_thread(lambda: respond(_handle(req, route, deps, caller)))


async def until_changed(
    look: Callable[[], str | None],
    seconds: float,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    clock: Callable[[], float] | None = None,
) -> int:
    """Wait until `look` answers something else, or `seconds` pass; returns how often it looked."""
    seen = await asyncio.to_thread(look)
    if seen is None:  # nothing to watch (an error, a model not found): answer now
        return 1
    clock = clock or asyncio.get_running_loop().time
    deadline = clock() + seconds
    delay, looks = FIRST_LOOK_SECONDS, 1
    while (left := deadline - clock()) > 0:
        await sleep(min(delay, left))
        delay = min(delay * 2, LONGEST_LOOK_SECONDS)
        looks += 1
        if await asyncio.to_thread(look) != seen:
            break
    return looks


def _quietly(watch: Watch, req: func.HttpRequest, deps: Dependencies, caller: Principal) -> str | None:
    try:
        return watch(req, deps, caller)
    except Exception:  # the handler answers the same error once the wait ends
        return None


def wait_seconds(req: func.HttpRequest) -> int:
    """?wait=N, or 0 when absent or not a number from 0 to 60 (the handler then answers 400)."""
    value = req.params.get("wait", "")
    return int(value) if value.isdigit() and int(value) <= MAX_WAIT_SECONDS else 0


def _handle(req: func.HttpRequest, route: Route, deps: Dependencies, caller: Principal) -> Reply:
    try:
        return route.handler(req, deps, caller)
    except InvalidRequest as problem:
        return error(400, "Invalid request", str(problem), problem.errors)
    except NotVisible:
        return not_found("the model")
    except Missing as missing:
        return not_found(missing.what)
    except Conflict as refused:
        return error(409, route.endpoint.conflict, str(refused))
    except TooLarge as refused:
        return error(413, "Request too large", str(refused))
    except TooMany as refused:
        return error(
            429, "Too many requests", str(refused), headers={"Retry-After": str(refused.retry_after)}
        )
    except Unavailable as unavailable:
        log.warning("%s %s not served: %s", req.method, urlsplit(req.url).path, unavailable)
        return error(503, "Service unavailable", str(unavailable))
    except Refused as refused:
        return refused.reply
