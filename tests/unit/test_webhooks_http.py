"""The webhook routes, called as the Functions host calls them, on fake dependencies: statuses,
the error shape naming field and rule, and a secret that appears in exactly one answer."""

from __future__ import annotations

import json
from typing import Any

import pytest

from registry.services.dependencies import Dependencies
from tests.builders import make_deps, make_settings
from tests.unit.test_http_handlers import call, errors_of

BOB = {"X-MS-CLIENT-PRINCIPAL-ID": "bob", "X-MS-CLIENT-PRINCIPAL-NAME": "bob"}
HOOK = {"url": "https://hooks.example.com/in", "events": ["finished", "failed"], "scope": "own"}


@pytest.fixture
def deps() -> Dependencies:
    return make_deps(make_settings(REGISTRY_MAX_WEBHOOKS="2", REGISTRY_DEV_MODE="true"))


def body_of(response: Any) -> Any:
    return json.loads(response.get_body())


def test_put_creates_with_the_secret_once_then_replaces_without_it(deps: Dependencies) -> None:
    created = call(deps, "put_webhook", body=HOOK, id="ci")
    assert created.status_code == 201
    assert created.headers["Location"] == "http://localhost/api/v1.0/webhooks/ci"
    secret = body_of(created)["secret"]
    assert secret.startswith("whsec_") and body_of(created)["events"] == ["finished", "failed"]

    replaced = call(deps, "put_webhook", body={**HOOK, "description": "CI"}, id="ci")
    shown = [
        replaced,
        call(deps, "get_webhook", id="ci"),
        call(deps, "list_webhooks"),
        call(deps, "list_webhook_deliveries", id="ci"),
    ]
    assert [r.status_code for r in shown] == [200, 200, 200, 200]
    assert all(secret not in r.get_body().decode() and "whsec_" not in r.get_body().decode() for r in shown)
    assert body_of(shown[1])["description"] == "CI" and body_of(shown[1])["enabled"] is True

    rotated = call(deps, "rotate_webhook_secret", id="ci")
    assert rotated.status_code == 200 and body_of(rotated)["secret"] not in (secret, None)
    assert body_of(rotated)["previous_secret_until"]


def test_another_caller_gets_404_for_every_webhook_route(deps: Dependencies) -> None:
    call(deps, "put_webhook", body=HOOK, id="ci")
    for route, extra in (
        ("get_webhook", {}),
        ("delete_webhook", {}),
        ("rotate_webhook_secret", {}),
        ("list_webhook_deliveries", {}),
        ("redeliver_webhook_event", {"event_id": "a" * 32}),
    ):
        response = call(deps, route, headers=BOB, id="ci", **extra)
        assert response.status_code == 404, route
        assert body_of(response)["error_message"] == "the webhook does not exist or is not visible to you"
    assert body_of(call(deps, "list_webhooks", headers=BOB)) == {"webhooks": []}


def test_an_invalid_body_is_a_400_naming_each_field_and_rule(deps: Dependencies) -> None:
    response = call(
        deps, "put_webhook", body={"url": "http://10.0.0.1/x", "events": ["nope"], "extra": 1}, id="ci"
    )
    assert response.status_code == 400
    errors = errors_of(response)
    assert errors["url"].startswith("webhook URL must use https")
    assert errors["events[0]"].startswith("must be one of registered, cloned, finished")
    assert errors["extra"] == "unknown field"
    assert {"message", "error_message"} <= set(body_of(response))
    assert call(deps, "put_webhook", body=HOOK, id="bad id").status_code == 400
    assert call(deps, "put_webhook", raw=b"not json", id="ci").status_code == 415


def test_the_webhook_limit_is_a_409_and_a_missing_delivery_a_404(deps: Dependencies) -> None:
    assert call(deps, "put_webhook", body=HOOK, id="one").status_code == 201
    assert call(deps, "put_webhook", body=HOOK, id="two").status_code == 201
    refused = call(deps, "put_webhook", body=HOOK, id="three")
    assert refused.status_code == 409 and "at most 2 webhooks" in body_of(refused)["error_message"]
    missing = call(deps, "redeliver_webhook_event", id="one", event_id="b" * 32)
    assert missing.status_code == 404
    assert call(deps, "delete_webhook", id="one").status_code == 200
    assert call(deps, "delete_webhook", id="one").status_code == 404


def test_the_delivery_log_rejects_a_bad_page_size_or_token(deps: Dependencies) -> None:
    call(deps, "put_webhook", body=HOOK, id="ci")
    assert call(deps, "list_webhook_deliveries", id="ci", params={"limit": "0"}).status_code == 400
    bad = call(deps, "list_webhook_deliveries", id="ci", params={"continuation": "forged"})
    assert bad.status_code == 400 and "continuation" in errors_of(bad)
