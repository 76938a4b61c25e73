"""The catalog's HTTP functions on the fakes: identity, CSRF, headers, visibility, and dev mode."""

from __future__ import annotations

import json

import pytest

from registry.web import core as core_module
from registry.web import security
from registry.web.core import Core
from tests.unit.web_fixtures import Browser, acting_as, fake_core, model, seed

PAGES = [
    ("/api/catalog/models", {}),
    ("/api/catalog/registrations", {}),
    ("/api/catalog/register", {}),
    ("/api/catalog/model/shared/1/bob", {"name": "shared", "version": "1", "owner": "bob"}),
    ("/api/catalog/registrations/mine/1/delete", {"name": "mine", "version": "1"}),
    ("/api/catalog/registrations/mine/1/visibility", {"name": "mine", "version": "1"}),
]


def install(monkeypatch: pytest.MonkeyPatch, core: Core) -> Core:
    monkeypatch.setattr(core_module, "_core", core)
    return core


@pytest.fixture
def dev(monkeypatch: pytest.MonkeyPatch) -> Core:
    core = install(monkeypatch, fake_core(dev_mode=True))
    seed(
        core,
        [
            model("bob", "shared", description="bob's public model"),
            model("bob", "secret", private=True),
            model("alice", "mine", private=True),
        ],
    )
    return core


@pytest.mark.parametrize(("path", "route"), PAGES)
def test_every_page_carries_the_security_headers_and_no_store(
    dev: Core, path: str, route: dict[str, str]
) -> None:
    response = acting_as("alice").get(path, route=route)
    assert response.status_code == 200, response.get_body()[:500]
    headers = response.headers
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "same-origin"
    assert headers["Cache-Control"] == "no-store"
    assert b"<script>" not in response.get_body()  # no inline script: only <script src=...>


def test_a_new_browser_gets_a_same_site_strict_session_cookie(dev: Core) -> None:
    response = Browser().get("/api/catalog/dev/act-as")
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith(f"{security.SESSION_COOKIE}=")
    assert "SameSite=Strict" in cookie and "HttpOnly" in cookie


def test_a_post_without_the_token_or_from_another_site_is_refused_and_changes_nothing(dev: Core) -> None:
    browser = acting_as("alice")
    route = {"name": "mine", "version": "1"}
    token = browser.csrf("/api/catalog/registrations/mine/1/delete", route)
    path = "/api/catalog/registrations/mine/1/delete"
    assert browser.request("POST", path, route=route, form={}).status_code == 403
    assert browser.request("POST", path, route=route, form={"csrf": "0" * 64}).status_code == 403
    evil = {"Origin": "https://evil.example"}
    assert browser.request("POST", path, route=route, form={"csrf": token}, headers=evil).status_code == 403
    other_session = acting_as("alice")  # alice's token from another browser (session) is no good here
    assert other_session.request("POST", path, route=route, form={"csrf": token}).status_code == 403
    assert dev._deps.store.get("alice", "mine", "1") is not None

    response = browser.request("POST", path, route=route, form={"csrf": token})

    assert response.status_code == 303
    assert dev._deps.store.get("alice", "mine", "1") is None


def test_the_token_in_a_header_works_for_scripts(dev: Core) -> None:
    browser = acting_as("alice")
    token = browser.csrf("/api/catalog/registrations/mine/1/visibility", {"name": "mine", "version": "1"})
    response = browser.request(
        "POST",
        "/api/catalog/registrations/mine/1/visibility",
        route={"name": "mine", "version": "1"},
        form={"private": "false"},
        headers={"X-Catalog-CSRF": token},
    )
    assert response.status_code == 303
    registration = dev._deps.store.get("alice", "mine", "1")
    assert registration is not None and registration.private is False


def test_another_owners_private_model_is_not_found_like_a_missing_one(dev: Core) -> None:
    alice = acting_as("alice")
    secret = alice.get(
        "/api/catalog/model/secret/1/bob", route={"name": "secret", "version": "1", "owner": "bob"}
    )
    missing = alice.get(
        "/api/catalog/model/nope/1/bob", route={"name": "nope", "version": "1", "owner": "bob"}
    )
    assert secret.status_code == missing.status_code == 404
    assert b"secret" not in secret.get_body().split(b"<main")[1]
    listing = alice.get("/api/catalog/models").get_body().decode()
    assert 'data-key="shared/1/bob"' in listing and "secret/1/bob" not in listing
    assert 'data-key="mine/1/alice"' in listing
    status = alice.get("/api/catalog/registrations/secret/1/status", route={"name": "secret", "version": "1"})
    assert status.status_code == 404


def test_the_status_is_json_of_the_callers_own_registration(dev: Core) -> None:
    response = acting_as("alice").get(
        "/api/catalog/registrations/mine/1/status", route={"name": "mine", "version": "1"}
    )
    assert response.mimetype == "application/json"
    status = json.loads(response.get_body())
    assert (status["name"], status["owner"], status["state"]) == ("mine", "alice", "Finished")


def test_without_a_caller_the_pages_ask_to_sign_in(dev: Core) -> None:
    response = Browser().get("/api/catalog/models")
    assert response.status_code == 401
    assert b"/api/catalog/dev/act-as" in response.get_body()


def test_outside_dev_mode_the_act_as_cookie_is_ignored_and_the_picker_does_not_exist(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    install(monkeypatch, fake_core(dev_mode=False))
    browser = Browser(cookies={core_module.DEV_PRINCIPAL_COOKIE: "alice"})
    response = browser.get("/api/catalog/models")
    assert response.status_code == 401
    assert b"/.auth/login/aad" in response.get_body()
    assert browser.get("/api/catalog/dev/act-as").status_code == 404
    # Principal headers are not trusted here either (no Easy Auth in front of this app).
    assert (
        Browser(headers={"X-MS-CLIENT-PRINCIPAL-ID": "alice"}).get("/api/catalog/models").status_code == 401
    )


def test_behind_easy_auth_the_principal_headers_name_the_caller(monkeypatch: pytest.MonkeyPatch) -> None:
    install(monkeypatch, fake_core(dev_mode=False, WEBSITE_INSTANCE_ID="i", WEBSITE_AUTH_ENABLED="true"))
    easy_auth = Browser(
        headers={"X-MS-CLIENT-PRINCIPAL-ID": "alice", "X-MS-CLIENT-PRINCIPAL-NAME": "Alice A."},
        cookies={core_module.DEV_PRINCIPAL_COOKIE: "mallory"},
    )
    response = easy_auth.get("/api/catalog/models")
    assert response.status_code == 200
    assert b'data-testid="caller">Alice A.<' in response.get_body()


def test_the_register_form_puts_field_errors_beside_their_fields(dev: Core) -> None:
    browser = acting_as("alice")
    token = browser.csrf("/api/catalog/register")
    response = browser.request(
        "POST",
        "/api/catalog/register",
        form={"csrf": token, "name": "m", "version": "1", "type": "DECODER", "input_types": ["SOURCE_CODE"]},
    )
    assert response.status_code == 400
    page = response.get_body().decode()
    assert 'id="input_languages" name="input_languages" type="text" value="" aria-invalid="true"' in page
    assert 'id="input_languages-error"' in page
    assert 'id="files-error"' in page


def test_a_download_of_a_path_that_is_no_file_of_the_model_is_not_found(dev: Core) -> None:
    response = acting_as("alice").get(
        "/api/catalog/model/shared/1/bob/files/weights.bin",
        route={"name": "shared", "version": "1", "owner": "bob", "path": "weights.bin"},
    )
    assert response.status_code == 404
    assert "Location" not in response.headers


def test_static_files_are_served_only_from_the_list(dev: Core) -> None:
    css = Browser().get("/api/catalog/static/catalog.css", route={"file": "catalog.css"})
    assert css.status_code == 200 and css.mimetype == "text/css"
    assert "immutable" in css.headers["Cache-Control"]
    assert Browser().get("/api/catalog/static/x", route={"file": "../views.py"}).status_code == 404
