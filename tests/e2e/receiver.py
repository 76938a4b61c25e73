"""A real webhook receiver: an HTTP server on a free loopback port that verifies every delivery's
Standard Webhooks signature with `standardwebhooks` and records what it got, answering as a test
scripts (per path: a list of statuses, then 200), and that can go down and come back on its port."""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from standardwebhooks import Webhook, WebhookVerificationError


@dataclass
class Received:
    path: str
    webhook_id: str
    event: dict[str, Any]
    at: float  # time.monotonic() when it arrived
    answered: int

    @property
    def kind(self) -> str:
        return str(self.event["type"]).removeprefix("registry.model.")


@dataclass
class Receiver:
    port: int = 0
    secrets: dict[str, str] = field(default_factory=dict)  # path -> the subscription's secret
    script: dict[str, list[int]] = field(default_factory=dict)  # path -> statuses to answer first
    received: list[Received] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # why requests failed verification
    hold: Callable[[Received], None] | None = None  # called before answering (a test may block here)
    _server: http.server.ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self) -> Receiver:
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.handle(self, body)

            def log_message(self, *args: object) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        """Down: its port refuses connections until it starts again."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def handle(self, request: http.server.BaseHTTPRequestHandler, body: bytes) -> None:
        path = request.path
        secret = self.secrets.get(path)
        headers = {k: v for k, v in request.headers.items()}
        try:
            if secret is None:
                raise WebhookVerificationError(f"no secret for {path}")
            event = Webhook(secret).verify(body, headers)
        except WebhookVerificationError as refused:
            with self._lock:
                self.refused.append(f"{path}: {refused}")
            request.send_response(401)
            request.end_headers()
            return
        with self._lock:
            statuses = self.script.get(path, [])
            status = statuses.pop(0) if statuses else 200
            got = Received(path, headers["webhook-id"], event, time.monotonic(), status)
            self.received.append(got)
        if self.hold is not None:
            self.hold(got)
        payload = json.dumps({"ok": status < 300}).encode()
        request.send_response(status)
        request.send_header("Content-Type", "application/json")
        request.send_header("Content-Length", str(len(payload)))
        request.end_headers()
        request.wfile.write(payload)

    def at(self, path: str) -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.path == path]

    def wait_for(
        self, path: str, until: Callable[[list[Received]], bool], timeout: float = 60
    ) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.at(path)
            if until(got):
                return got
            time.sleep(0.1)
        raise AssertionError(f"{path} got {[(r.kind, r.answered) for r in self.at(path)]} in {timeout}s")
