"""HTTP triggers: a threaded WSGI server that routes requests to functions."""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import azure.functions as func
from azure.functions import _abc as azf_abc
from werkzeug.datastructures import Headers
from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.wrappers import Request, Response
from werkzeug.wsgi import ClosingIterator

from devhost.invocation import FunctionDef, Invoker
from devhost.routing import MethodNotAllowed, Router

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

log = logging.getLogger("devhost.http")

HTTP_REASON = "This function was programmatically called via the host APIs."
_HOMEPAGE = b"<html><body><h1>Your Functions 4.0 app is up and running</h1></body></html>"


def _raw_path(environ: WSGIEnvironment, request: Request) -> str:
    """The path as sent (still percent-encoded), so route values decode per segment."""
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if isinstance(raw, str) and raw:
        # Undo the WSGI latin-1 "encoding dance" to get the request bytes back as text.
        return urlsplit(raw.encode("latin-1").decode("utf-8", "replace")).path or "/"
    return request.path


def build_request(request: Request, raw_path: str, route_params: dict[str, str]) -> func.HttpRequest:
    query = request.query_string.decode("latin-1")
    url = f"{request.scheme}://{request.host}{raw_path}" + (f"?{query}" if query else "")
    # The host joins repeated query keys with commas (StringValues.ToString()).
    params = {key: ",".join(request.args.getlist(key)) for key in request.args}
    return func.HttpRequest(
        method=request.method,
        url=url,
        headers=dict(request.headers.items()),
        params=params,
        route_params=route_params,
        body=request.get_data(cache=False),
    )


def to_response(result: Any) -> Response:
    """Convert a function's return value as the worker's HTTP output converter does."""
    if isinstance(result, azf_abc.HttpResponse):
        headers = Headers()
        source = result.headers
        items = source.items() if isinstance(source, Headers) else dict(source).items()
        for name, value in items:
            headers.add(name, value)
        if "content-type" not in headers:
            mimetype = result.mimetype
            charset = getattr(result, "charset", "utf-8")
            headers["Content-Type"] = (
                f"{mimetype}; charset={charset}" if mimetype.startswith("text/") else mimetype
            )
        return Response(result.get_body(), status=int(result.status_code), headers=headers)
    if isinstance(result, str):
        return Response(result, status=200, content_type="text/plain; charset=utf-8")
    if isinstance(result, (bytes, bytearray)):
        return Response(bytes(result), status=200, content_type="application/octet-stream")
    if result is None:
        return Response(status=204)
    raise TypeError(f"HTTP function returned unsupported type {type(result).__name__}")


def _error(status: int, message: str) -> Response:
    return Response(json.dumps({"message": message}), status=status, content_type="application/json")


class FunctionsApp:
    """WSGI application dispatching to HTTP-triggered functions."""

    def __init__(self, router: Router[FunctionDef], invoker: Invoker) -> None:
        self.router = router
        self.invoker = invoker

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        # In flight until the server closes the body iterable, i.e. the response is written,
        # so a shutdown waits for it and not just for the function.
        self.invoker.begin()
        try:
            request = Request(environ)
            response = self.handle(request, _raw_path(environ, request))
            return ClosingIterator(response(environ, start_response), [self.invoker.end])
        except BaseException:
            self.invoker.end()
            raise

    def handle(self, request: Request, raw_path: str) -> Response:
        match = self.router.match(request.method, raw_path)
        if match is None:
            if raw_path.strip("/") == "" and request.method in ("GET", "HEAD") and not _homepage_disabled():
                return Response(_HOMEPAGE, content_type="text/html; charset=utf-8")
            return Response(status=404)
        if isinstance(match, MethodNotAllowed):
            return Response(status=405, headers={"Allow": ", ".join(sorted(match.allowed))})
        function = match.target
        try:
            http_request = build_request(request, raw_path, match.route_params)
        except Exception:
            log.exception("Could not read the request for 'Functions.%s'", function.name)
            return _error(500, "Internal server error")
        try:
            result = self.invoker.invoke(function, http_request, HTTP_REASON)
        except Exception:
            return _error(500, "Internal server error")  # the invoker logged the traceback
        try:
            return to_response(result)
        except Exception:
            log.exception("'Functions.%s' returned an invalid HTTP response", function.name)
            return _error(500, "Internal server error")


def _homepage_disabled() -> bool:
    return os.environ.get("AzureWebJobsDisableHomepage", "").lower() == "true"  # noqa: SIM112 - host's name


class HttpServer:
    """Threaded werkzeug server bound at construction, so ``port`` is known (also for port 0)."""

    def __init__(self, host: str, port: int, app: FunctionsApp) -> None:
        self._server: BaseWSGIServer = make_server(host, port, app, threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, name="devhost-http", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_port)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
