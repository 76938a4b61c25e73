"""The app's HTTP functions called in-process, as the Functions host calls them: a func.HttpRequest
through `registry.blueprints.http.serve`, on the dependencies a test hands in."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import azure.functions as func

from registry.blueprints import http, models_api
from registry.domain.jobs import CopyJob
from registry.identity import Principal
from registry.services.copying import Outcome, process_job
from registry.services.dependencies import Dependencies
from tests.fakes import FakeJobQueue

BASE_URL = "http://localhost:7071/api/"


@dataclass(frozen=True)
class Answer:
    status: int
    mimetype: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class InProcessApi:
    def __init__(self, deps: Dependencies, queue: FakeJobQueue) -> None:
        self.deps = deps
        self.queue = queue
        self.routes = {route.operation_id: route for route in models_api.routes()}

    def call(
        self,
        operation: str,
        caller: Principal | None,
        *,
        params: dict[str, str] | None = None,
        body: Any = None,
        raw_body: bytes | None = None,
        **route_params: str,
    ) -> Answer:
        """Call the operation (its route values by keyword) as `caller` (None: no identity)."""
        route = self.routes[operation]
        path = re.sub(r"\{\*?(\w+)\}", lambda m: quote(route_params[m.group(1)]), route.path)
        query = f"?{urlencode(params)}" if params else ""
        headers = {"Content-Type": "application/json"}
        if caller is not None:
            headers |= {"X-MS-CLIENT-PRINCIPAL-ID": caller.id, "X-MS-CLIENT-PRINCIPAL-NAME": caller.name}
        content = raw_body if raw_body is not None else (b"" if body is None else json.dumps(body).encode())
        request = func.HttpRequest(
            route.method,
            BASE_URL + path + query,
            headers=headers,
            params=params or {},
            route_params=route_params,
            body=content,
        )
        response = http.serve(request, route, self.deps)
        return Answer(response.status_code, response.mimetype, dict(response.headers), response.get_body())

    def run_worker(self, rounds: int = 20) -> list[Outcome]:
        """Copy everything queued (continuations too), as the queue trigger would."""
        outcomes: list[Outcome] = []
        for _ in range(rounds):
            jobs = [sent.job for sent in self.queue.sent if isinstance(sent.job, CopyJob)]
            self.queue.sent.clear()
            if not jobs:
                return outcomes
            outcomes += [process_job(job, self.deps) for job in jobs]
        raise AssertionError("the queue never drained")
