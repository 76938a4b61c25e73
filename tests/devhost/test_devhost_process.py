"""The dev host as a subprocess, against Azurite and a throwaway app."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from azure.core.exceptions import ResourceExistsError
from azure.storage.queue import QueueClient

from devhost.azurite import Azurite

REPO = Path(__file__).resolve().parents[2]

APP = """
import json
import time
from pathlib import Path

import azure.functions as func

OUT = Path(__file__).parent / "out"
OUT.mkdir(exist_ok=True)
app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


def _json(name, req):
    return func.HttpResponse(json.dumps({"fn": name, **req.route_params}), mimetype="application/json")


@app.route(route="v1.0/model/{name}/{version}/{owner}", methods=["GET"])
def owner(req: func.HttpRequest) -> func.HttpResponse:
    return _json("owner", req)


@app.route(route="v1.0/model/{name}/{version}/status", methods=["GET"])
def status(req: func.HttpRequest) -> func.HttpResponse:
    return _json("status", req)


@app.route(route="v1.0/model/clone/{name}/{version}", methods=["POST"])
def clone(req: func.HttpRequest) -> func.HttpResponse:
    return _json("clone", req)


@app.route(route="slow", methods=["GET"])
def slow(req: func.HttpRequest) -> func.HttpResponse:
    time.sleep(1.0)
    return func.HttpResponse("done")


@app.queue_trigger(arg_name="msg", queue_name="%WORK_QUEUE%", connection="AzureWebJobsStorage")
def work(msg: func.QueueMessage) -> None:
    (OUT / f"work-{msg.id}").write_bytes(msg.get_body())


@app.queue_trigger(arg_name="msg", queue_name="%FAIL_QUEUE%", connection="AzureWebJobsStorage")
def fail(msg: func.QueueMessage) -> None:
    with (OUT / "fail-attempts").open("a") as attempts:
        attempts.write(f"{msg.dequeue_count}\\n")
    raise RuntimeError("always fails")


@app.timer_trigger(schedule="0 0 0 1 1 *", arg_name="timer", run_on_startup=True)
def tick(timer: func.TimerRequest) -> None:
    (OUT / "tick").write_text(str(timer.past_due))
"""

HOST_JSON = {
    "version": "2.0",
    "extensions": {
        "http": {"routePrefix": "api"},
        "queues": {
            "batchSize": 4,
            "maxDequeueCount": 2,
            "visibilityTimeout": "00:00:00",
            "maxPollingInterval": "00:00:00.300",
        },
    },
}


def _wait_for(predicate: Callable[[], bool], timeout: float = 15.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _read_lines_until(
    process: subprocess.Popen[str], done: Callable[[list[str]], bool], timeout: float
) -> list[str]:
    """Collect stdout lines on a thread (a bare readline could block forever)."""
    lines: list[str] = []
    finished = threading.Event()

    def reader() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line.rstrip("\n"))
            if done(lines):
                break
        finished.set()

    threading.Thread(target=reader, daemon=True).start()
    finished.wait(timeout)
    return lines


@pytest.fixture(scope="module")
def storage_connection(azurite: Azurite) -> str:
    return azurite.connection_string()


@dataclass
class RunningHost:
    process: subprocess.Popen[str]
    base_url: str
    app_dir: Path
    log: Path
    env: dict[str, str]

    def get(self, path: str, method: str = "GET") -> tuple[int, bytes]:
        request = urllib.request.Request(
            self.base_url + path, method=method, data=b"" if method != "GET" else None
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def queue(self, name: str) -> QueueClient:
        client = QueueClient.from_connection_string(self.env["AzureWebJobsStorage"], name)
        with contextlib.suppress(ResourceExistsError):
            client.create_queue()
        return client


@contextlib.contextmanager
def _run_host(app_dir: Path, env: dict[str, str]) -> Iterator[RunningHost]:
    log = app_dir / f"host-{uuid.uuid4().hex[:6]}.log"
    with log.open("w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "devhost", "--port", "0", "--app-dir", str(app_dir)],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    try:
        lines = _read_lines_until(process, lambda seen: seen[-1].startswith("Host started: "), timeout=30)
        started = [line for line in lines if line.startswith("Host started: ")]
        assert started, f"host did not start: {lines}\n{log.read_text()}"
        yield RunningHost(process, started[0].removeprefix("Host started: "), app_dir, log, env)
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.kill(process.pid, signal.SIGKILL)
                process.wait()


@pytest.fixture(scope="module")
def app_env(tmp_path_factory: pytest.TempPathFactory, storage_connection: str) -> tuple[Path, dict[str, str]]:
    app_dir = tmp_path_factory.mktemp("app")
    (app_dir / "function_app.py").write_text(textwrap.dedent(APP))
    (app_dir / "host.json").write_text(json.dumps(HOST_JSON))
    suffix = uuid.uuid4().hex[:8]
    # The settings file supplies the queue names; the connection comes from the environment.
    settings = {"Values": {"WORK_QUEUE": f"work-{suffix}", "FAIL_QUEUE": f"fail-{suffix}"}}
    (app_dir / "local.settings.json").write_text(json.dumps(settings))
    env = {**os.environ, "AzureWebJobsStorage": storage_connection, "PYTHONPATH": str(REPO)}
    env.update(settings["Values"])
    return app_dir, env


@pytest.fixture(scope="module")
def host(app_env: tuple[Path, dict[str, str]]) -> Iterator[RunningHost]:
    with _run_host(*app_env) as running:
        yield running


def test_http_route_with_params(host: RunningHost) -> None:
    status, body = host.get("/api/v1.0/model/res%20net/3/alice")
    assert status == 200
    assert json.loads(body) == {"fn": "owner", "name": "res net", "version": "3", "owner": "alice"}


def test_http_precedence(host: RunningHost) -> None:
    assert json.loads(host.get("/api/v1.0/model/resnet/3/status")[1])["fn"] == "status"
    status, body = host.get("/api/v1.0/model/clone/resnet/3", method="POST")
    assert (status, json.loads(body)["fn"]) == (200, "clone")
    assert host.get("/api/v1.0/model/resnet/3/status", method="POST")[0] == 405
    assert host.get("/api/nowhere")[0] == 404


def test_queue_trigger_consumes_a_message(host: RunningHost) -> None:
    queue = host.queue(host.env["WORK_QUEUE"])
    sent = queue.send_message(base64.b64encode(b"hello queue").decode())
    done = host.app_dir / "out" / f"work-{sent.id}"
    _wait_for(done.exists, what="the queue function")
    assert done.read_bytes() == b"hello queue"
    _wait_for(lambda: not list(queue.peek_messages()), what="the message to be deleted")


def test_failing_message_goes_to_poison_queue(host: RunningHost) -> None:
    queue = host.queue(host.env["FAIL_QUEUE"])
    content = base64.b64encode(b"doomed").decode()
    queue.send_message(content)
    poison = host.queue(f"{host.env['FAIL_QUEUE']}-poison")
    _wait_for(lambda: bool(list(poison.peek_messages())), what="the poison queue")
    assert [m.content for m in poison.peek_messages()] == [content]
    assert (host.app_dir / "out" / "fail-attempts").read_text().split() == ["1", "2"]
    assert not list(queue.peek_messages())


def test_timer_runs_on_startup(host: RunningHost) -> None:
    _wait_for((host.app_dir / "out" / "tick").exists, what="the startup timer run")


def test_sigterm_waits_for_in_flight_requests(app_env: tuple[Path, dict[str, str]]) -> None:
    with _run_host(*app_env) as running:
        results: list[tuple[int, bytes]] = []
        request = threading.Thread(target=lambda: results.append(running.get("/api/slow")))
        request.start()
        _wait_for(lambda: "Executing 'Functions.slow'" in running.log.read_text(), what="the slow request")
        os.kill(running.process.pid, signal.SIGTERM)
        assert running.process.wait(timeout=15) == 0
        request.join(10)
        assert results == [(200, b"done")]
        log = running.log.read_text()
        assert "Executed 'Functions.slow' (Succeeded" in log
        assert "Host stopped" in log
