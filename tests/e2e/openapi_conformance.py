"""Every answer the end-to-end tests receive, held to the app's own OpenAPI document.

For the operation the request reached (method and path template, literal segments first, as the
host routes), the status must be documented, the Content-Type one of the documented media types
(no body where none is documented), and a JSON body must validate against the documented schema
(OpenAPI 3.1 schemas are JSON Schema 2020-12; `$ref`s resolve within the document).
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import httpx
import jsonschema
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

DOCUMENT_URI = "urn:registry:openapi"
METHODS = ("get", "put", "post", "patch", "delete", "head", "options")


@dataclass(frozen=True)
class Operation:
    method: str
    template: str
    pattern: re.Pattern[str]
    literals: int  # literal segments: the more, the more specific the route
    pointer: str  # JSON pointer of the operation in the document
    spec: dict[str, Any]

    @property
    def name(self) -> str:
        return f"{self.spec.get('operationId', '?')} ({self.method.upper()} {self.template})"


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def _operation(template: str, method: str, spec: dict[str, Any]) -> Operation:
    segments = template.strip("/").split("/")
    parts = []
    for segment in segments:
        parameter = re.fullmatch(r"\{(\w+)\}", segment)
        if parameter is None:
            parts.append(re.escape(segment))
        elif segment == segments[-1] and parameter.group(1) == "path":
            parts.append(".+")  # a file's path may hold '/'
        else:
            parts.append("[^/]+")
    return Operation(
        method=method,
        template=template,
        pattern=re.compile("/" + "/".join(parts)),
        literals=sum(not s.startswith("{") for s in segments),
        pointer=f"/paths/{_escape(template)}/{method}",
        spec=spec,
    )


class Conformance:
    """Checks responses against one OpenAPI document served under `api_base` (e.g. /api/v1.0)."""

    def __init__(self, document: dict[str, Any], api_base: str) -> None:
        self.api_base = api_base.rstrip("/")
        self.operations = sorted(
            (
                _operation(template, method, spec)
                for template, item in document["paths"].items()
                for method, spec in item.items()
                if method in METHODS
            ),
            key=lambda o: -o.literals,
        )
        resource: Resource[Any] = Resource.from_contents(document, default_specification=DRAFT202012)
        self.registry: Registry[Any] = Registry().with_resource(DOCUMENT_URI, resource)

    def operation(self, method: str, raw_path: str) -> Operation | None:
        if not raw_path.startswith(self.api_base + "/"):
            return None
        path = raw_path[len(self.api_base) :]
        for operation in self.operations:
            if operation.method == method.lower() and operation.pattern.fullmatch(path):
                return operation
        return None

    def problems(self, method: str, raw_path: str, response: httpx.Response) -> tuple[str, list[str]]:
        """The operation the request reached (named) and what its answer breaks of the document."""
        operation = self.operation(method, raw_path)
        if operation is None:
            return f"{method} {unquote(raw_path)}", ["no operation of the document serves this request"]
        status = str(response.status_code)
        answers = operation.spec.get("responses", {})
        key = next((k for k in (status, f"{status[0]}XX", "default") if k in answers), None)
        if key is None:
            return operation.name, [f"status {status} is not documented (documented: {', '.join(answers)})"]
        return operation.name, self._content_problems(operation, key, answers[key], response)

    def _content_problems(
        self, operation: Operation, key: str, answer: dict[str, Any], response: httpx.Response
    ) -> list[str]:
        content: dict[str, Any] = answer.get("content", {})
        if not content:
            return (
                [f"status {key} documents no body, got {len(response.content)} bytes"]
                if response.content
                else []
            )
        media_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type not in content:
            return [
                f"Content-Type {media_type or '(none)'} is not documented for {key} ({', '.join(content)})"
            ]
        if media_type == "application/json" or media_type.endswith("+json"):
            try:
                body: Any = response.json()
            except ValueError as problem:
                return [f"the body is not JSON: {problem}"]
        else:
            body = response.text
        pointer = f"{operation.pointer}/responses/{_escape(key)}/content/{_escape(media_type)}/schema"
        validator = jsonschema.Draft202012Validator(
            {"$ref": f"{DOCUMENT_URI}#{pointer}"}, registry=self.registry
        )
        errors = sorted(validator.iter_errors(body), key=lambda e: list(e.absolute_path))
        return [_describe(error) for error in errors][:10]


def _describe(error: jsonschema.ValidationError) -> str:
    """Where and why; for oneOf/anyOf, also why each alternative failed."""
    where = "/" + "/".join(map(str, error.absolute_path))
    reasons = [f"/{'/'.join(map(str, e.absolute_path))}: {e.message[:200]}" for e in error.context or ()]
    detail = f" (alternatives: {'; '.join(reasons)})" if reasons else ""
    return f"body at {where}: {error.message[:200]}{detail}"


class ConformanceHook:
    """An httpx response hook: checks each answer of the host, records what breaks the document and
    fails the request that got it (AssertionError naming the operation)."""

    _lock = threading.Lock()
    mismatches: list[str] = []  # every mismatch of this process, for the test teardown to report
    checked = 0  # answers checked in this process

    def __init__(self, host_url: str) -> None:
        self.host_url = host_url.rstrip("/")
        self._checker: Conformance | None = None

    def checker(self) -> Conformance:
        if self._checker is None:
            response = httpx.get(f"{self.host_url}/api/v1.0/openapi.json", timeout=30)
            response.raise_for_status()
            checker = Conformance(response.json(), "/api/v1.0")
            self._report(*checker.problems("GET", "/api/v1.0/openapi.json", response))
            self._checker = checker
        return self._checker

    def __call__(self, response: httpx.Response) -> None:
        request = response.request
        if not str(request.url).startswith(self.host_url + "/"):
            return  # not the app (e.g. a SAS URL of the emulator)
        response.read()
        raw_path = request.url.raw_path.decode("ascii").split("?")[0]
        with self._lock:
            ConformanceHook.checked += 1
        self._report(*self.checker().problems(request.method, raw_path, response))

    def _report(self, operation: str, problems: list[str]) -> None:
        if not problems:
            return
        message = f"{operation} answered against the OpenAPI document: " + "; ".join(problems)
        with self._lock:
            self.mismatches.append(message)
        raise AssertionError(message)
