"""The registry's HTTP API, as the CLI calls it: one method per route, errors as CliError."""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

import httpx

from registry.cli.errors import FAILED, NOT_FOUND, CliError
from registry.cli.identity import SIGN_IN_HINT, Identity

RETRIED_STATUSES = (429, 503)
MAX_RETRIES = 5
MAX_RETRY_WAIT = 60.0  # seconds: a longer Retry-After is not worth blocking a person's terminal for
API_PREFIX = "/api/v1.0"


def retry_after(response: httpx.Response, attempt: int, now: Callable[[], float] = time.time) -> float:
    """Seconds to wait before retrying: the answer's Retry-After (seconds or a date), else a backoff."""
    value = response.headers.get("Retry-After", "").strip()
    wait = float(2**attempt)
    if value:
        try:
            wait = float(value)
        except ValueError:
            parsed = email.utils.parsedate_to_datetime(value) if value else None
            if parsed is not None:
                wait = parsed.timestamp() - now()
    return min(max(wait, 0.0), MAX_RETRY_WAIT)


def _path(*segments: str) -> str:
    return API_PREFIX + "".join("/" + quote(s, safe="") for s in segments)


def _hint(status: int, what: str) -> str:
    if status == 401:
        return SIGN_IN_HINT + "; against the local stack pass --as USER"
    if status == 404:
        return (
            f"check {what}: private models are visible only to their owner (`registry ls --mine` lists yours)"
        )
    if status == 409:
        return "register a new version (--version), or remove this one first with `registry rm`"
    if status in (429, 503) or status >= 500:
        return "the registry is busy or unavailable: try again in a minute"
    if status == 400:
        return "fix the fields named above (in model.yaml or the flags) and run the command again"
    return ""


def api_error(response: httpx.Response, what: str) -> CliError:
    """The registry's {message, error_message, errors} answer as an error with a next step."""
    try:
        body: Any = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    reason = body.get("error_message") or body.get("message") or response.reason_phrase
    errors = [e for e in body.get("errors") or [] if isinstance(e, dict)]
    code = NOT_FOUND if response.status_code == 404 else FAILED
    message = f"{what}: {reason} (HTTP {response.status_code})"
    return CliError(message, _hint(response.status_code, what), code, response.status_code, errors)


class RegistryApi:
    def __init__(
        self,
        root: str,
        identity: Identity,
        *,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        timeout: float = 30.0,
    ) -> None:
        self.root = root
        self.identity = identity
        self._sleep = sleep
        self._client = httpx.Client(
            base_url=root, transport=transport, timeout=timeout, headers={"User-Agent": "registry-cli"}
        )

    def close(self) -> None:
        self._client.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        what: str,
        json: Any = None,
        params: Mapping[str, str] | None = None,
        ok: tuple[int, ...] = (200,),
    ) -> httpx.Response:
        """Send, waiting out 429/503 as Retry-After says; any other status outside `ok` raises."""
        for attempt in range(MAX_RETRIES + 1):
            try:
                response = self._client.request(
                    method, path, json=json, params=params, headers=self.identity.headers()
                )
            except httpx.TransportError as problem:
                raise CliError(
                    f"cannot reach the registry at {self.root}: {problem.__class__.__name__}",
                    "is it running? Start the local one with `make run`, or point --api / REGISTRY_API at it",
                ) from None
            if response.status_code in RETRIED_STATUSES and attempt < MAX_RETRIES:
                self._sleep(retry_after(response, attempt))
                continue
            break
        if response.status_code not in ok:
            raise api_error(response, what)
        return response

    # -- routes ---------------------------------------------------------------------------------

    def register(self, name: str, version: str, body: dict[str, Any]) -> dict[str, Any]:
        what = f"registering {name} {version}"
        response = self.request("PUT", _path("model", name, version), what=what, json=body, ok=(202,))
        return dict(response.json())

    def status(self, name: str, version: str) -> dict[str, Any]:
        what = f"your registration of {name} {version}"
        return dict(self.request("GET", _path("model", name, version, "status"), what=what).json())

    def find_status(self, name: str, version: str) -> dict[str, Any] | None:
        """The status of your registration of name/version, or None if there is none."""
        try:
            return self.status(name, version)
        except CliError as error:
            if error.status == 404:
                return None
            raise

    def models(self, filters: Mapping[str, str], limit: int, continuation: str | None) -> dict[str, Any]:
        params = {**filters, "limit": str(limit)}
        if continuation:
            params["continuation"] = continuation
        return dict(self.request("GET", _path("models"), what="listing models", params=params).json())

    def model(self, name: str, version: str, owner: str) -> dict[str, Any]:
        what = f"model {name} {version} of {owner}"
        return dict(self.request("GET", _path("model", name, version, owner), what=what).json())

    def update(self, name: str, version: str, body: dict[str, Any]) -> dict[str, Any]:
        what = f"your model {name} {version}"
        return dict(self.request("PATCH", _path("model", name, version), what=what, json=body).json())

    def delete(self, name: str, version: str) -> dict[str, Any]:
        what = f"your model {name} {version}"
        return dict(self.request("DELETE", _path("model", name, version), what=what).json())

    def clone(self, name: str, version: str, body: dict[str, Any]) -> dict[str, Any]:
        what = (
            f"cloning {name} {body.get('parent_version')} of {body.get('parent_owner')} as version {version}"
        )
        response = self.request(
            "PUT", _path("model", "clone", name, version), what=what, json=body, ok=(202,)
        )
        return dict(response.json())

    def page_exists(self, url: str) -> bool:
        """Whether a page of this registry (the web catalog's) answers 200 to the caller."""
        response = self.request("GET", url, what="the catalog page", ok=(200, 404))
        return response.status_code == 200
