"""HTTP functions of the web catalog: thin handlers that ask the core (core.py) and render pages.

Every page answers with the security headers (security.py); every POST passes the CSRF check
first. Routes are under `catalog/`, so with the host's `api` prefix the catalog lives at
`/api/catalog/...`.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import azure.functions as func
from jinja2 import Environment, FileSystemLoader, select_autoescape

from registry.web import commands, history, listing, security
from registry.web.core import (
    DATA_TYPES,
    DEV_PRINCIPAL_COOKIE,
    MAX_WAIT_SECONDS,
    MODEL_TYPES,
    Conflict,
    Core,
    InvalidRequest,
    NotVisible,
    Principal,
    TooLarge,
    TooMany,
    Unavailable,
    core,
    is_identifier,
    model_filter,
    wait_seconds,
)
from registry.web.forms import RegisterForm
from registry.web.rendering import file_route, render_index

log = logging.getLogger(__name__)
bp = func.Blueprint()

HERE = Path(__file__).resolve().parent
STATIC = {"catalog.css": "text/css", "catalog.js": "text/javascript", "favicon.svg": "image/svg+xml"}
OWN_PAGE = 50
HISTORY_ON_MODEL_PAGE = 10  # the latest changes; the history page holds the rest
HISTORY_PAGE = 50


@cache
def _static_version() -> str:
    digest = hashlib.sha256()
    for name in sorted(STATIC):
        digest.update((HERE / "static" / name).read_bytes())
    return digest.hexdigest()[:12]


def _size(value: Any) -> str:
    if not isinstance(value, int):
        return "unknown size"
    size = float(value)
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{int(size)} bytes" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{value} bytes"


def _when(value: Any, *, seconds: bool = False) -> str:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return str(value)
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC" if seconds else "%Y-%m-%d %H:%M UTC")
    return ""


def _flatten(value: Any, prefix: str = "") -> list[tuple[str, str]]:
    """Nested config as readable (field, value) pairs."""
    if isinstance(value, dict):
        pairs: list[tuple[str, str]] = []
        for key, inner in value.items():
            pairs += _flatten(inner, f"{prefix}.{key}" if prefix else str(key))
        return pairs
    if isinstance(value, list):
        if all(not isinstance(x, dict | list) for x in value):
            return [(prefix, ", ".join(str(x) for x in value))]
        return [(prefix, json.dumps(value))]
    if isinstance(value, bool):
        return [(prefix, "yes" if value else "no")]
    return [(prefix, "" if value is None else str(value))]


@cache
def _templates() -> Environment:
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["size"] = _size
    env.filters["when"] = _when
    env.filters["moment"] = lambda value: _when(value, seconds=True)
    env.filters["flatten"] = _flatten
    env.filters["urlpart"] = lambda value: quote(str(value), safe="")
    env.globals["static"] = lambda name: f"/api/catalog/static/{name}?v={_static_version()}"
    env.globals["MODEL_TYPES"] = MODEL_TYPES
    env.globals["DATA_TYPES"] = DATA_TYPES
    return env


# -- the request's context and the response --------------------------------------------------------


@dataclass
class Context:
    core: Core
    req: func.HttpRequest
    caller: Principal | None
    session: str
    fresh_session: bool
    csrf: str

    @property
    def dev_mode(self) -> bool:
        return self.core.settings.dev_mode

    @property
    def secure(self) -> bool:
        proto = (self.req.headers.get("x-forwarded-proto") or urlsplit(self.req.url).scheme).lower()
        return bool(proto == "https")

    @property
    def me(self) -> Principal:
        assert self.caller is not None  # handlers that need a caller run only with one
        return self.caller

    def form(self) -> tuple[dict[str, str], dict[str, list[str]]]:
        """The urlencoded form body: last value of each field, and every value."""
        multi = parse_qs(self.req.get_body().decode("utf-8", "replace"), keep_blank_values=True)
        return {key: values[-1] for key, values in multi.items()}, multi


def _headers(ctx: Context | None, dev_mode: bool) -> dict[str, str]:
    headers = security.security_headers(dev_mode=dev_mode)
    headers["Cache-Control"] = "no-store"
    if ctx is not None and ctx.fresh_session:
        headers["Set-Cookie"] = security.set_cookie(security.SESSION_COOKIE, ctx.session, secure=ctx.secure)
    return headers


def render(ctx: Context, template: str, code: int = 200, **values: Any) -> func.HttpResponse:
    html = (
        _templates()
        .get_template(template)
        .render(
            caller=ctx.caller, csrf=ctx.csrf, dev_mode=ctx.dev_mode, path=urlsplit(ctx.req.url).path, **values
        )
    )
    return func.HttpResponse(
        html, status_code=code, headers=_headers(ctx, ctx.dev_mode), mimetype="text/html", charset="utf-8"
    )


def redirect(ctx: Context, location: str, cookie: str | None = None) -> func.HttpResponse:
    headers = _headers(ctx, ctx.dev_mode) | {"Location": location}
    if cookie:
        headers["Set-Cookie"] = cookie
    return func.HttpResponse(status_code=303, headers=headers)


def json_reply(ctx: Context, body: Any, status: int = 200) -> func.HttpResponse:
    return func.HttpResponse(
        json.dumps(body), status_code=status, headers=_headers(ctx, ctx.dev_mode), mimetype="application/json"
    )


def problem(ctx: Context, code: int, title: str, detail: str, **values: Any) -> func.HttpResponse:
    return render(ctx, "problem.html", code, title=title, detail=detail, **values)


Handler = Callable[[Context], func.HttpResponse]
Watch = Callable[[Context], str | None]


def _prepare(req: func.HttpRequest, *, anonymous: bool = False) -> Context | func.HttpResponse:
    """The request's context, or the answer that turns it away (sign in, 429, CSRF)."""
    the_core = core()
    cookies = security.cookies_of(req.headers)
    session = cookies.get(security.SESSION_COOKIE, "")
    fresh = not re.fullmatch(r"[A-Za-z0-9_-]{32,64}", session)
    if fresh:
        session = security.new_session()
    caller = the_core.caller(req, cookies)
    key = security.csrf_key(the_core.settings.sealing_key)
    token = security.csrf_token(key, session, caller.id if caller else "")
    ctx = Context(the_core, req, caller, session, fresh, token)
    refused = _refusal(ctx, cookies, key, anonymous=anonymous)
    return refused if refused is not None else ctx


def serve(req: func.HttpRequest, handler: Handler, *, anonymous: bool = False) -> func.HttpResponse:
    """Session, caller, rate limit and CSRF checks first; then the handler, with the core's
    errors as pages."""
    prepared = _prepare(req, anonymous=anonymous)
    return prepared if isinstance(prepared, func.HttpResponse) else _run(prepared, handler)


async def serve_waiting(req: func.HttpRequest, handler: Handler, watch: Watch) -> func.HttpResponse:
    """`serve`, after waiting (?wait=N seconds, at most 60) until what `watch` sees changes.

    The API's long polling (registry.blueprints.http): the checks first (the wait counts once
    against the rate limit), then looks at 0.5, 1.5, 3.5, 7.5 s and every 4 s after, each a
    brief storage read on a pool thread; the event loop sleeps in between, so a waiting request
    holds no thread.
    """
    prepared = await asyncio.to_thread(_prepare, req)
    if isinstance(prepared, func.HttpResponse):
        return prepared
    ctx = prepared
    seconds = wait_seconds(ctx.req)
    if seconds:

        def look() -> str | None:
            try:
                return watch(ctx)
            except Exception:  # the handler answers the same error once the wait ends
                return None

        await ctx.core.until_changed(look, seconds)
    return await asyncio.to_thread(_run, ctx, handler)


def _refusal(
    ctx: Context, cookies: dict[str, str], key: bytes, *, anonymous: bool
) -> func.HttpResponse | None:
    req, caller = ctx.req, ctx.caller
    if caller is None and not anonymous:
        login = f"/.auth/login/aad?post_login_redirect_uri={quote(urlsplit(req.url).path)}"
        detail = "The catalog shows models to a signed-in caller."
        return problem(ctx, 401, "Sign in", detail, login=None if ctx.dev_mode else login)
    wait = ctx.core.retry_after(caller) if caller is not None else None
    if wait is not None:  # the API's rate limit holds for the catalog too
        response = problem(
            ctx, 429, "Too many requests", f"Slow down: try again in {wait} second{'' if wait == 1 else 's'}."
        )
        response.headers["Retry-After"] = str(wait)
        return response
    if req.method == "POST":
        form, _ = ctx.form()
        sent = form.get(security.CSRF_FIELD) or req.headers.get(security.CSRF_HEADER) or ""
        session = cookies.get(security.SESSION_COOKIE, "")
        valid = security.csrf_valid(key, session, caller.id if caller else "", sent)
        if security.cross_site(req.headers, req.url) or not valid:
            detail = "This form has expired or did not come from this catalog. Reload the page and try again."
            return problem(ctx, 403, "Refused", detail)
    return None


def _run(ctx: Context, handler: Handler) -> func.HttpResponse:
    try:
        return handler(ctx)
    except NotVisible:
        return problem(ctx, 404, "Not found", "That model does not exist or is not visible to you.")
    except InvalidRequest as invalid:
        return problem(ctx, 400, "Invalid request", "The request breaks these rules:", errors=invalid.errors)
    except listing.BadToken as bad:
        return problem(ctx, 400, "Invalid page link", str(bad))
    except Conflict as conflict:
        return problem(ctx, 409, "Conflict", str(conflict))
    except TooLarge as refused:
        return problem(ctx, 413, "Too large", str(refused))
    except TooMany as refused:
        return problem(ctx, 429, "Too many requests", str(refused))
    except Unavailable as unavailable:
        log.warning("catalog %s not served: %s", urlsplit(ctx.req.url).path, unavailable)
        return problem(ctx, 503, "Try again shortly", "The registry's storage is unavailable right now.")


def _route(ctx: Context, *names: str) -> list[str]:
    return [ctx.req.route_params[name] for name in names]


# -- models -----------------------------------------------------------------------------------------


def _models(ctx: Context) -> func.HttpResponse:
    query = listing.Query.parse(dict(ctx.req.params))
    if query.errors:
        return render(ctx, "models.html", 400, query=query, result=None)

    def fetch(filters: Any, limit: int, continuation: str | None) -> Any:
        return ctx.core.list_page(ctx.me, filters, limit, continuation)

    result = listing.browse(fetch, query)
    return render(ctx, "models.html", query=query, result=result)


@bp.route(route="catalog", methods=["GET"])
def catalog_home(req: func.HttpRequest) -> func.HttpResponse:
    return serve(req, _models)


@bp.route(route="catalog/models", methods=["GET"])
def catalog_models(req: func.HttpRequest) -> func.HttpResponse:
    return serve(req, _models)


def _clones(ctx: Context, name: str, version: str, owner: str) -> list[Any]:
    """Clones the caller may see: a clone keeps its parent's name, so one key range holds them."""
    page = ctx.core.list_page(ctx.me, model_filter(name=name), listing.SEARCH_STEP, None)
    parent = {"name": name, "version": version, "owner": owner}
    return [row for row in page.rows if row.parent_model == parent]


def _base(ctx: Context) -> str:
    """The registry's address as the browser reached it (the commands to copy call it)."""
    parts = urlsplit(ctx.req.url)
    return f"{parts.scheme}://{parts.netloc}"


def _model(ctx: Context) -> func.HttpResponse:
    name, version, owner = _route(ctx, "name", "version", "owner")
    try:
        details = ctx.core.details(ctx.me, name, version, owner)
    except NotVisible:
        if owner == ctx.me.id:  # gone: its owner still reads its history
            return _gone(ctx, name, version, owner)
        raise
    view = details.view
    files = frozenset(f["name"] for f in view.get("files", []))
    index_html = None
    if details.index:
        index_html = render_index(
            details.index.decode("utf-8", "replace"), files, file_route(name, version, owner)
        )
    mine = owner == ctx.me.id
    changes = ctx.core.history(ctx.me, (name, version, owner), HISTORY_ON_MODEL_PAGE, None)
    return render(
        ctx,
        "model.html",
        view=view,
        index_html=index_html,
        mine=mine,
        clones=_clones(ctx, name, version, owner),
        status=details.status,
        manifests=details.manifests,
        history=history.entries(changes.entries),
        more_history=changes.continuation is not None,
        commands=commands.from_view(_base(ctx), view) if mine else None,
        download=file_route(name, version, owner),
    )


def _gone(ctx: Context, name: str, version: str, owner: str) -> func.HttpResponse:
    """The owner's page of a model that no longer exists: 404, with what its history tells."""
    changes = ctx.core.history(ctx.me, (name, version, owner), HISTORY_ON_MODEL_PAGE, None)
    entries = history.entries(changes.entries)
    return render(
        ctx,
        "history.html",
        404,
        model={"name": name, "version": version, "owner": owner},
        entries=entries,
        gone=True,
        next_page=changes.continuation,
        first=True,
    )


@bp.route(route="catalog/model/{name}/{version}/{owner}", methods=["GET"])
def catalog_model(req: func.HttpRequest) -> func.HttpResponse:
    return serve(req, _model)


def _history(ctx: Context) -> func.HttpResponse:
    name, version, owner = _route(ctx, "name", "version", "owner")
    token = ctx.req.params.get("page") or None
    changes = ctx.core.history(ctx.me, (name, version, owner), HISTORY_PAGE, token)
    return render(
        ctx,
        "history.html",
        model={"name": name, "version": version, "owner": owner},
        entries=history.entries(changes.entries),
        gone=not ctx.core.exists(ctx.me, name, version, owner),  # only its owner reads on then
        next_page=changes.continuation,
        first=token is None,
    )


@bp.route(route="catalog/model/{name}/{version}/{owner}/history", methods=["GET"])
def catalog_model_history(req: func.HttpRequest) -> func.HttpResponse:
    return serve(req, _history)


def _manifest(ctx: Context) -> func.HttpResponse:
    """A manifest revision's JSON, as GET /api/v1.0/model/.../manifest?revision=N answers it."""
    name, version, owner = _route(ctx, "name", "version", "owner")
    given = ctx.req.params.get("revision", "")
    if given and not (given.isdigit() and 0 < int(given) < 2**31):
        return json_reply(
            ctx, {"message": "Invalid request", "error_message": "revision: a whole number"}, 400
        )
    try:
        found = ctx.core.manifest(ctx.me, name, version, owner, int(given) if given else None)
    except NotVisible:
        found = None
    if found is None:
        missing = "that manifest revision does not exist or is not visible to you"
        return json_reply(ctx, {"message": "Not found", "error_message": missing}, 404)
    return json_reply(ctx, found)


@bp.route(route="catalog/model/{name}/{version}/{owner}/manifest", methods=["GET"])
def catalog_model_manifest(req: func.HttpRequest) -> func.HttpResponse:
    return serve(req, _manifest)


def _file(ctx: Context) -> func.HttpResponse:
    name, version, owner = _route(ctx, "name", "version", "owner")
    url, sha256 = ctx.core.file_url(ctx.me, name, version, owner, ctx.req.route_params.get("path", ""))
    # The SAS is the caller's to use: in Location only, never in a page or a log.
    headers = _headers(ctx, ctx.dev_mode) | {"Location": url}
    if sha256:  # as the API's redirect says it (RFC 9530)
        headers["Repr-Digest"] = f"sha-256=:{base64.b64encode(bytes.fromhex(sha256)).decode()}:"
    return func.HttpResponse(status_code=302, headers=headers)


@bp.route(route="catalog/model/{name}/{version}/{owner}/files/{*path}", methods=["GET"])
def catalog_model_file(req: func.HttpRequest) -> func.HttpResponse:
    return serve(req, _file)


# -- my registrations --------------------------------------------------------------------------------


def _registrations(ctx: Context) -> func.HttpResponse:
    token = ctx.req.params.get("page") or None
    page = ctx.core.list_page(ctx.me, model_filter(owner=ctx.me.id), OWN_PAGE, token)
    details = {
        row.sort_key: ctx.core.status(ctx.me, row.name, row.version)
        for row in page.rows
        if row.state in ("InProgress", "Failed")
    }
    base = _base(ctx)
    copy = {
        row.sort_key: commands.from_row(base, row.name, row.type, row.description, row.private)
        for row in page.rows
    }
    return render(
        ctx,
        "registrations.html",
        rows=page.rows,
        details=details,
        row_commands=copy,
        next_page=page.continuation,
    )


@bp.route(route="catalog/registrations", methods=["GET"])
def catalog_registrations(req: func.HttpRequest) -> func.HttpResponse:
    return serve(req, _registrations)


def _bad_wait(ctx: Context) -> func.HttpResponse | None:
    given = ctx.req.params.get("wait")
    if given is None or (given.isdigit() and int(given) <= MAX_WAIT_SECONDS):
        return None
    detail = f"wait: seconds to wait for a change, a whole number from 0 to {MAX_WAIT_SECONDS}"
    return json_reply(ctx, {"message": "Invalid request", "error_message": detail}, 400)


def _status(ctx: Context) -> func.HttpResponse:
    name, version = _route(ctx, "name", "version")
    refused = _bad_wait(ctx)
    if refused is not None:
        return refused
    try:
        return json_reply(ctx, ctx.core.status(ctx.me, name, version))
    except NotVisible:
        return json_reply(ctx, {"message": "Not found"}, 404)


def _watch_one(ctx: Context) -> str | None:
    return ctx.core.status_version(ctx.me, [(ctx.req.route_params["name"], ctx.req.route_params["version"])])


@bp.route(route="catalog/registrations/{name}/{version}/status", methods=["GET"])
async def catalog_registration_status(req: func.HttpRequest) -> func.HttpResponse:
    """One registration's status; with ?wait=N, as soon as it changes or after N seconds."""
    return await serve_waiting(req, _status, _watch_one)


def _progress_keys(ctx: Context) -> list[tuple[str, str]] | None:
    """?models=NAME/VERSION,NAME/VERSION... (at most a page of them), or None if malformed."""
    keys: list[tuple[str, str]] = []
    for item in (ctx.req.params.get("models") or "").split(","):
        name, _, version = item.partition("/")
        if not (is_identifier(name) and is_identifier(version)):
            return None
        keys.append((name, version))
    return keys if len(keys) <= OWN_PAGE else None


def _statuses(ctx: Context) -> func.HttpResponse:
    keys = _progress_keys(ctx)
    if keys is None:
        detail = f"models: 1 to {OWN_PAGE} of your registrations, as NAME/VERSION separated by commas"
        return json_reply(ctx, {"message": "Invalid request", "error_message": detail}, 400)
    refused = _bad_wait(ctx)
    if refused is not None:
        return refused
    found = []
    for name, version in keys:
        try:
            found.append(ctx.core.status(ctx.me, name, version))
        except NotVisible:  # deleted meanwhile: left out
            continue
    return json_reply(ctx, {"registrations": found})


def _watch_many(ctx: Context) -> str | None:
    keys = _progress_keys(ctx)
    return ctx.core.status_version(ctx.me, keys) if keys else None


@bp.route(route="catalog/registrations/status", methods=["GET"])
async def catalog_registrations_status(req: func.HttpRequest) -> func.HttpResponse:
    """The status of several of the caller's registrations (?models=a/1,b/2); with ?wait=N, as
    soon as any of them changes or after N seconds: one long poll follows a whole page."""
    return await serve_waiting(req, _statuses, _watch_many)


def _visibility(ctx: Context) -> func.HttpResponse:
    name, version = _route(ctx, "name", "version")
    view = ctx.core.model(ctx.me, name, version, ctx.me.id)
    if ctx.req.method == "GET":
        return render(ctx, "confirm.html", view=view, action="visibility")
    form, _ = ctx.form()
    private = form.get("private") == "true"
    ctx.core.update(ctx.me, name, version, {"model_config": {"private": private}})
    return redirect(ctx, f"/api/catalog/model/{name}/{version}/{ctx.me.id}")


@bp.route(route="catalog/registrations/{name}/{version}/visibility", methods=["GET", "POST"])
def catalog_visibility(req: func.HttpRequest) -> func.HttpResponse:
    return serve(req, _visibility)


def _delete(ctx: Context) -> func.HttpResponse:
    name, version = _route(ctx, "name", "version")
    view = ctx.core.model(ctx.me, name, version, ctx.me.id)
    if ctx.req.method == "GET":
        return render(ctx, "confirm.html", view=view, action="delete")
    ctx.core.delete(ctx.me, name, version)
    return redirect(ctx, f"/api/catalog/registrations?deleted={quote(name)}%20{quote(version)}")


@bp.route(route="catalog/registrations/{name}/{version}/delete", methods=["GET", "POST"])
def catalog_delete(req: func.HttpRequest) -> func.HttpResponse:
    return serve(req, _delete)


# -- register ----------------------------------------------------------------------------------------


def _register(ctx: Context) -> func.HttpResponse:
    if ctx.req.method == "GET":
        return render(ctx, "register.html", form=RegisterForm.empty())
    single, multi = ctx.form()
    form = RegisterForm.parse(single, multi)
    name, version = form.values["name"], form.values["version"]
    try:
        ctx.core.register(ctx.me, name, version, form.body())
    except InvalidRequest as invalid:
        form.add_errors([(e.field, e.rule) for e in invalid.errors])
        return render(ctx, "register.html", 400, form=form)
    except Conflict as conflict:
        form.add_errors([("name", str(conflict))])
        return render(ctx, "register.html", 409, form=form)
    return redirect(ctx, f"/api/catalog/model/{name}/{version}/{ctx.me.id}")


@bp.route(route="catalog/register", methods=["GET", "POST"])
def catalog_register(req: func.HttpRequest) -> func.HttpResponse:
    return serve(req, _register)


# -- dev mode: act as --------------------------------------------------------------------------------


def _act_as(ctx: Context) -> func.HttpResponse:
    if not ctx.dev_mode:  # the picker exists only where the settings allow dev mode (never in Azure)
        return problem(ctx, 404, "Not found", "There is no such page.")
    if ctx.req.method == "GET":
        return render(ctx, "act_as.html", chosen="", error=None)
    form, _ = ctx.form()
    chosen = (form.get("principal") or "").strip()
    if not is_identifier(chosen):
        return render(
            ctx, "act_as.html", 400, chosen=chosen, error="Use 1-128 letters, digits, '.', '_' or '-'."
        )
    cookie = security.set_cookie(DEV_PRINCIPAL_COOKIE, chosen, secure=ctx.secure)
    return redirect(ctx, "/api/catalog/models", cookie=cookie)


@bp.route(route="catalog/dev/act-as", methods=["GET", "POST"])
def catalog_act_as(req: func.HttpRequest) -> func.HttpResponse:
    return serve(req, _act_as, anonymous=True)


# -- static files ------------------------------------------------------------------------------------


@bp.route(route="catalog/static/{file}", methods=["GET"])
def catalog_static(req: func.HttpRequest) -> func.HttpResponse:
    name = req.route_params.get("file", "")
    headers = security.security_headers(dev_mode=False)
    if name not in STATIC:
        return func.HttpResponse("Not found", status_code=404, headers=headers, mimetype="text/plain")
    headers["Cache-Control"] = "public, max-age=86400, immutable"
    return func.HttpResponse(
        (HERE / "static" / name).read_bytes(), headers=headers, mimetype=STATIC[name], charset="utf-8"
    )
