"""Unit tests: the CLI's HTTP client against a fake registry at the HTTP boundary (httpx.MockTransport)."""

from __future__ import annotations

import email.utils
from collections.abc import Callable

import httpx
import pytest

from registry.cli.api import MAX_RETRIES, MAX_RETRY_WAIT, RegistryApi, retry_after
from registry.cli.errors import FAILED, NOT_FOUND, CliError
from registry.cli.identity import DevIdentity

Handler = Callable[[httpx.Request], httpx.Response]


def api(handler: Handler, sleeps: list[float] | None = None) -> RegistryApi:
    record = sleeps if sleeps is not None else []
    return RegistryApi(
        "http://registry.test",
        DevIdentity("alice"),
        transport=httpx.MockTransport(handler),
        sleep=record.append,
    )


def test_a_429_is_retried_after_the_seconds_its_retry_after_names() -> None:
    answers = iter(
        [httpx.Response(429, headers={"Retry-After": "7"}), httpx.Response(200, json={"state": "Finished"})]
    )
    sleeps: list[float] = []
    status = api(lambda request: next(answers), sleeps).status("m", "1")
    assert status == {"state": "Finished"}
    assert sleeps == [7.0]


def test_retry_after_may_be_an_http_date_and_long_waits_are_capped() -> None:
    now = 1_800_000_000.0
    in_ten = email.utils.formatdate(now + 10, usegmt=True)
    assert retry_after(
        httpx.Response(429, headers={"Retry-After": in_ten}), 0, now=lambda: now
    ) == pytest.approx(10)
    assert retry_after(httpx.Response(429, headers={"Retry-After": "86400"}), 0) == MAX_RETRY_WAIT
    assert retry_after(httpx.Response(503), 2) == 4.0  # none given: a growing backoff


def test_a_registry_that_keeps_answering_429_ends_in_an_error_after_the_last_retry() -> None:
    calls: list[httpx.Request] = []

    def busy(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(
            429, headers={"Retry-After": "0"}, json={"message": "Too many", "error_message": "slow down"}
        )

    with pytest.raises(CliError) as failed:
        api(busy).models({}, 10, None)
    assert len(calls) == MAX_RETRIES + 1
    assert failed.value.code == FAILED and failed.value.status == 429
    assert "try again" in failed.value.hint


def test_every_request_carries_the_callers_identity() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"models": [], "continuation": None})

    api(answer).models({"type": "DECODER"}, 5, "token-1")
    request = seen[0]
    assert request.headers["X-MS-CLIENT-PRINCIPAL-ID"] == "alice"
    assert request.url.path == "/api/v1.0/models"
    assert dict(request.url.params) == {"type": "DECODER", "limit": "5", "continuation": "token-1"}


def test_a_404_is_not_found_exit_code_3_with_a_next_step() -> None:
    missing = httpx.Response(
        404,
        json={"message": "Not found", "error_message": "the model does not exist or is not visible to you"},
    )
    with pytest.raises(CliError) as failed:
        api(lambda request: missing).model("m", "1", "bob")
    assert failed.value.code == NOT_FOUND
    assert "not visible to you" in failed.value.message
    assert "registry ls --mine" in failed.value.hint


def test_a_400_keeps_the_apis_fields_and_rules() -> None:
    errors = [{"field": "model_config.type", "rule": "Input should be 'ENCODER', 'DECODER' or 'SEQ2SEQ'"}]
    refused = httpx.Response(
        400, json={"message": "Invalid request", "error_message": "...", "errors": errors}
    )
    with pytest.raises(CliError) as failed:
        api(lambda request: refused).register("m", "1", {})
    assert failed.value.code == FAILED
    assert failed.value.errors == errors
    assert failed.value.as_json()["error"]["errors"] == errors


def test_find_status_is_none_when_there_is_no_such_registration() -> None:
    assert api(lambda request: httpx.Response(404, json={})).find_status("m", "1") is None
    with pytest.raises(CliError):
        api(lambda request: httpx.Response(401, json={})).find_status("m", "1")


def test_an_unreachable_registry_says_how_to_start_or_point_at_one() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    with pytest.raises(CliError) as failed:
        api(refuse).status("m", "1")
    assert "cannot reach the registry at http://registry.test" in failed.value.message
    assert "make run" in failed.value.hint and "REGISTRY_API" in failed.value.hint


def test_names_are_quoted_into_the_path() -> None:
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.raw_path.decode())
        return httpx.Response(200, json={})

    api(answer).model("a b", "1/2", "o")
    assert seen == ["/api/v1.0/model/a%20b/1%2F2/o"]
