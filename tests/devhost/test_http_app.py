"""The WSGI side of HTTP triggers, in process, and host helpers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest
from werkzeug.test import Client

from devhost.host import Host, load_local_settings, resolve_setting_references
from devhost.hostjson import HostOptions
from devhost.http_server import FunctionsApp


def _echo(req: func.HttpRequest) -> func.HttpResponse:
    body = {
        "method": req.method,
        "route": dict(req.route_params),
        "params": dict(req.params),
        "body": req.get_body().decode(),
        "header": req.headers.get("x-test"),
        "url": req.url,
    }
    response = func.HttpResponse(json.dumps(body), status_code=201, mimetype="application/json")
    response.headers.add_header("Set-Cookie", "a=1")
    response.headers.add_header("Set-Cookie", "b=2")
    return response


def _app() -> func.FunctionApp:
    app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)
    app.route(route="things/{name}/{id:int}", methods=["POST", "GET"])(_echo)

    @app.route(route="boom")
    def boom(req: func.HttpRequest) -> func.HttpResponse:
        raise RuntimeError("kaboom")

    @app.route(route="text", methods=["GET"])
    def text(req: func.HttpRequest) -> str:
        return "plain"

    @app.route(route="ctx")
    async def ctx(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
        return func.HttpResponse(context.function_name)

    return app


@pytest.fixture
def client(tmp_path: Path) -> Client:
    host = Host(app_dir=tmp_path, options=HostOptions(), environ={})
    host.index(_app())
    return Client(FunctionsApp(host.router, host.invoker))


def test_request_is_built_like_the_host(client: Client) -> None:
    response = client.post("/api/things/a%20b/7?q=1&q=2", data=b"payload", headers={"X-Test": "yes"})
    assert response.status_code == 201
    assert response.headers.getlist("Set-Cookie") == ["a=1", "b=2"]
    assert response.content_type == "application/json"
    assert response.json == {
        "method": "POST",
        "route": {"name": "a b", "id": "7"},
        "params": {"q": "1,2"},
        "body": "payload",
        "header": "yes",
        "url": "http://localhost/api/things/a%20b/7?q=1&q=2",
    }


def test_errors(client: Client) -> None:
    failed = client.get("/api/boom")
    assert failed.status_code == 500
    assert failed.json == {"message": "Internal server error"}
    assert client.get("/api/things/a/notanint").status_code == 404
    not_allowed = client.delete("/api/things/a/1")
    assert not_allowed.status_code == 405
    assert not_allowed.headers["Allow"] == "GET, POST"


def test_str_return_async_and_context(client: Client) -> None:
    text = client.get("/api/text")
    assert (text.status_code, text.text, text.mimetype) == (200, "plain", "text/plain")
    assert client.get("/api/ctx").text == "ctx"


def test_local_settings_do_not_override_environment(tmp_path: Path) -> None:
    path = tmp_path / "local.settings.json"
    path.write_text(json.dumps({"IsEncrypted": False, "Values": {"A": "file", "B": "file", "C": True}}))
    environ = {"A": "env"}
    assert load_local_settings(path, environ) == ["B", "C"]
    assert environ == {"A": "env", "B": "file", "C": "true"}
    assert load_local_settings(tmp_path / "missing.json", environ) == []


def test_setting_references() -> None:
    assert resolve_setting_references("%Q%-items", {"Q": "jobs"}) == "jobs-items"
    with pytest.raises(LookupError):
        resolve_setting_references("%Nope%", {})


def test_indexing_all_trigger_kinds(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)

    def noop(arg: Any) -> None:
        return None

    app.function_name("q")(app.queue_trigger(arg_name="msg", queue_name="%QNAME%", connection="Store")(noop))
    app.function_name("t")(app.timer_trigger(schedule="*/5 * * * * *", arg_name="timer")(noop))
    app.function_name("h")(app.route(route="h")(noop))
    app.function_name("b")(app.blob_trigger(arg_name="blob", path="c/{name}", connection="Store")(noop))
    environ = {"QNAME": "Jobs", "Store": "UseDevelopmentStorage=true"}
    host = Host(app_dir=tmp_path, options=HostOptions(), environ=environ)
    host.index(app)
    assert [listener.queue_name for listener in host.listeners] == ["jobs"]
    assert [timer.function.name for timer in host.timers] == ["t"]
    assert host.router.templates == ["api/h"]
    assert "blob" in caplog.text.lower()


def test_a_function_disabled_by_its_app_setting_is_not_indexed(tmp_path: Path) -> None:
    app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)

    def noop(arg: Any) -> None:
        return None

    app.function_name("worker")(
        app.queue_trigger(arg_name="msg", queue_name="jobs", connection="Store")(noop)
    )
    app.function_name("h")(app.route(route="h")(noop))
    environ = {"Store": "UseDevelopmentStorage=true", "AzureWebJobs.worker.Disabled": "true"}
    host = Host(app_dir=tmp_path, options=HostOptions(), environ=environ)
    host.index(app)
    assert host.listeners == []
    assert host.router.templates == ["api/h"]
