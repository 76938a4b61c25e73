"""infra/smoke.py against a local HTTP server playing the deployed app: it passes only when an
anonymous request gets 401 and the token gets the OpenAPI document, waits for an app that is still
starting, and says what failed and what to check."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.infra import INFRA

TOKEN = "header.eyJhdWQiOiJhcGk6Ly9vdGhlciIsImlzcyI6Imh0dHBzOi8vaXNzdWVyIn0.signature"  # aud api://other
OPENAPI = json.dumps({"openapi": "3.1.0", "info": {"title": "registry", "version": "1"}}).encode()

Behaviour = Callable[[str | None, int], tuple[int, bytes]]


def easy_auth_app(token: str | None, call: int) -> tuple[int, bytes]:
    if token != TOKEN:
        return 401, b""
    return 200, OPENAPI


@pytest.fixture
def serve() -> Iterator[Callable[[Behaviour], str]]:
    servers: list[ThreadingHTTPServer] = []

    def start(behaviour: Behaviour) -> str:
        calls = {"n": 0}

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                calls["n"] += 1
                assert self.path == "/api/v1.0/openapi.json"
                auth = self.headers.get("Authorization", "")
                status, body = behaviour(auth.removeprefix("Bearer ") or None, calls["n"])
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/api/v1.0"

    yield start
    for server in servers:
        server.shutdown()


def smoke(api: str, token: str | None = TOKEN) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin"} | ({"REGISTRY_SMOKE_TOKEN": token} if token else {})
    return subprocess.run(
        [
            sys.executable,
            str(INFRA / "smoke.py"),
            "--api",
            api,
            "--attempts",
            "3",
            "--wait",
            "0.1",
            "--timeout",
            "5",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_deployment_behind_easy_auth_that_serves_passes(serve: Callable[[Behaviour], str]) -> None:
    done = smoke(serve(easy_auth_app))
    assert done.returncode == 0, done.stderr
    assert "anonymous request gets 401 ... ok" in done.stderr and "with a token ... ok" in done.stderr
    assert TOKEN not in done.stdout + done.stderr


def test_an_app_that_answers_anonymous_callers_fails_and_points_at_easy_auth(
    serve: Callable[[Behaviour], str],
) -> None:
    done = smoke(serve(lambda token, call: (200, OPENAPI)))
    assert done.returncode == 1
    assert "Easy Auth is not in front of the app" in done.stderr and "az webapp auth show" in done.stderr


def test_a_rejected_token_fails_with_its_audience_and_what_to_check(
    serve: Callable[[Behaviour], str],
) -> None:
    done = smoke(serve(lambda token, call: (401, b"")))
    assert done.returncode == 1
    assert "Easy Auth rejected the token" in done.stderr and "api://other" in done.stderr
    assert "allowedAudiences" in done.stderr


def test_an_app_still_starting_is_waited_for(serve: Callable[[Behaviour], str]) -> None:
    def starting(token: str | None, call: int) -> tuple[int, bytes]:
        return (503, b"starting") if call <= 2 else easy_auth_app(token, call)

    done = smoke(serve(starting))
    assert done.returncode == 0, done.stderr


def test_an_app_that_fails_with_a_token_points_at_the_key_vault_reference(
    serve: Callable[[Behaviour], str],
) -> None:
    def broken(token: str | None, call: int) -> tuple[int, bytes]:
        return (401, b"") if token is None else (500, b"settings error")

    done = smoke(serve(broken))
    assert done.returncode == 1 and "Key Vault reference" in done.stderr and "HTTP 500" in done.stderr


def test_something_that_is_not_the_openapi_document_fails(serve: Callable[[Behaviour], str]) -> None:
    done = smoke(serve(lambda token, call: (401, b"") if token is None else (200, b"<html>hello</html>")))
    assert done.returncode == 1 and "not an OpenAPI document" in done.stderr


def test_no_token_is_a_failure_not_a_skip(serve: Callable[[Behaviour], str]) -> None:
    done = smoke(serve(easy_auth_app), token=None)
    assert done.returncode == 1 and "REGISTRY_SMOKE_TOKEN" in done.stderr


def test_no_answer_at_all_fails_with_where_to_look() -> None:
    done = smoke("http://127.0.0.1:9/api/v1.0")
    assert done.returncode == 1 and "did not come up" in done.stderr
