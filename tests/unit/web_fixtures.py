"""The web catalog on the in-memory fakes: its Core, seeded registrations, and requests to its views."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Coroutine
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import azure.functions as func

from registry.domain.model import Registration
from registry.web.cache import PublicListingCache
from registry.web.core import Core
from tests.builders import make_deps, make_settings
from tests.e2e.helpers import record
from tests.fakes import T0


def fake_core(*, dev_mode: bool = True, ttl: float = 10, **settings: str) -> Core:
    deps = make_deps(make_settings(REGISTRY_DEV_MODE="true" if dev_mode else "false", **settings))
    return Core(deps, PublicListingCache(ttl_seconds=ttl))


def seed(core: Core, registrations: list[Registration]) -> None:
    store = core._deps.store
    for registration in registrations:
        store.insert(registration)
        if registration.listed_publicly:
            store.publish(registration)


def model(owner: str, name: str, *, minutes: int = 0, **changes: Any) -> Registration:
    registration = record(owner=owner, name=name, version="1", **changes)
    registration.updated_at = T0 + timedelta(minutes=minutes)
    return registration


@dataclass
class Browser:
    """Requests to the views as one browser would send them: its cookies, and the forms' tokens."""

    base: str = "http://127.0.0.1:7071"
    cookies: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)

    def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        route: dict[str, str] | None = None,
        form: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> func.HttpResponse:
        from registry.web import views

        all_headers = dict(self.headers) | (headers or {})
        if self.cookies:
            all_headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = urlencode(form or {}, doseq=True).encode()
        if form is not None:
            all_headers["Content-Type"] = "application/x-www-form-urlencoded"
        request = func.HttpRequest(
            method,
            self.base + path + (f"?{urlencode(params)}" if params else ""),
            headers=all_headers,
            params=params or {},
            route_params=route or {},
            body=body,
        )
        handler = {
            "/api/catalog/models": views.catalog_models,
            "/api/catalog/register": views.catalog_register,
            "/api/catalog/registrations": views.catalog_registrations,
            "/api/catalog/dev/act-as": views.catalog_act_as,
        }.get(path)
        if handler is None:
            handler = _by_route(path)
        answer: func.HttpResponse | Coroutine[Any, Any, func.HttpResponse] = handler(request)
        # A long-polling view is async.
        response = asyncio.run(answer) if isinstance(answer, Coroutine) else answer
        cookie = response.headers.get("Set-Cookie")
        if cookie:
            name, _, rest = cookie.partition("=")
            self.cookies[name] = rest.split(";")[0]
        return response

    def get(self, path: str, **kwargs: Any) -> func.HttpResponse:
        return self.request("GET", path, **kwargs)

    def csrf(self, path: str, route: dict[str, str] | None = None) -> str:
        page = self.get(path, route=route).get_body().decode()
        match = re.search(r'name="csrf" value="([^"]+)"', page)
        assert match, page
        return match.group(1)


def _by_route(path: str) -> Any:
    from registry.web import views

    if path.startswith("/api/catalog/static/"):
        return views.catalog_static
    if path.startswith("/api/catalog/model/"):
        if "/files/" in path:
            return views.catalog_model_file
        if path.endswith("/history"):
            return views.catalog_model_history
        if path.endswith("/manifest"):
            return views.catalog_model_manifest
        return views.catalog_model
    if path == "/api/catalog/registrations/status":
        return views.catalog_registrations_status
    if path.endswith("/visibility"):
        return views.catalog_visibility
    if path.endswith("/delete"):
        return views.catalog_delete
    if path.endswith("/status"):
        return views.catalog_registration_status
    raise AssertionError(f"no view for {path}")


def acting_as(principal: str) -> Browser:
    browser = Browser()
    token = browser.csrf("/api/catalog/dev/act-as")
    response = browser.request(
        "POST", "/api/catalog/dev/act-as", form={"csrf": token, "principal": principal}
    )
    assert response.status_code == 303
    return browser
