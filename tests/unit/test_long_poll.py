"""GET .../status?wait=N: answers as soon as the registration changes, or after N seconds, looking
at the record less and less often, without holding a thread while it waits."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import azure.functions as func
import pytest

from registry.blueprints import http
from registry.blueprints.http import serve_waiting
from registry.domain.vocabulary import State
from registry.services.dependencies import Dependencies
from registry.services.limits import Admission
from tests.builders import make_deps, make_settings, registration_body
from tests.fakes import FakeRegistrationStore
from tests.unit.test_http_handlers import ROUTES, call, request

NAME, VERSION = "m", "1"


@pytest.fixture
def store() -> FakeRegistrationStore:
    return FakeRegistrationStore()


@pytest.fixture
def deps(store: FakeRegistrationStore) -> Dependencies:
    deps = make_deps(make_settings(REGISTRY_DEV_MODE="true"), store=store)
    assert (
        call(deps, "register_model", body=registration_body(), name=NAME, version=VERSION).status_code == 202
    )
    return deps


def status(deps: Dependencies, wait: str | None, headers: dict[str, str] | None = None) -> func.HttpResponse:
    req, route = request(
        "registration_status",
        params=None if wait is None else {"wait": wait},
        headers=headers,
        name=NAME,
        version=VERSION,
    )
    return asyncio.run(serve_waiting(req, route, deps))


def test_a_change_during_the_wait_is_answered_at_once(
    deps: Dependencies, store: FakeRegistrationStore
) -> None:
    def finish_soon() -> None:
        time.sleep(0.3)
        record = store.peek("alice", NAME, VERSION)
        assert record is not None
        record.finish(deps.now(), "Registered")
        store.update("alice", NAME, VERSION, state=record.state, message=record.message)

    threading.Thread(target=finish_soon).start()
    started = time.monotonic()
    response = status(deps, "30")
    assert time.monotonic() - started < 10  # long before the 30 s: the change ended the wait
    assert response.status_code == 200
    assert json.loads(response.get_body())["state"] == State.FINISHED.value


def test_looks_back_off_from_half_a_second_to_four_and_stop_at_the_deadline() -> None:
    now = [0.0]
    delays: list[float] = []

    async def sleep(seconds: float) -> None:
        delays.append(seconds)
        now[0] += seconds

    looks = asyncio.run(http.until_changed(lambda: "same", 60, sleep, lambda: now[0]))
    assert delays[:5] == [0.5, 1.0, 2.0, 4.0, 4.0]
    assert sum(delays) == pytest.approx(60)
    assert looks == len(delays) + 1 <= 19  # a 60 s wait reads the record at most 19 times


def test_a_look_that_fails_ends_the_wait_and_the_handler_answers_the_error() -> None:
    def look() -> str | None:
        return None  # what a watch that raised gives

    assert asyncio.run(http.until_changed(look, 60, lambda _: asyncio.sleep(3600), lambda: 0.0)) == 1


def test_an_unknown_registration_is_answered_404_without_waiting(deps: Dependencies) -> None:
    req, route = request("registration_status", params={"wait": "60"}, name="nothing", version="1")
    started = time.monotonic()
    assert asyncio.run(serve_waiting(req, route, deps)).status_code == 404
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("wait", ["61", "-1", "soon", "1.5"])
def test_a_wait_that_is_not_0_to_60_seconds_is_a_400_naming_it(deps: Dependencies, wait: str) -> None:
    response = status(deps, wait)
    assert response.status_code == 400
    assert "wait" in {e["field"] for e in json.loads(response.get_body())["errors"]}


def test_without_a_caller_the_answer_is_401_at_once(deps: Dependencies) -> None:
    assert status(deps, "60", headers={}).status_code == 401


def test_a_wait_counts_as_one_request_for_the_rate_limit(store: FakeRegistrationStore) -> None:
    deps = make_deps(make_settings(REGISTRY_DEV_MODE="true"), store=store)
    assert (
        call(deps, "register_model", body=registration_body(), name=NAME, version=VERSION).status_code == 202
    )
    limited = Dependencies(**{**vars(deps), "admission": Admission(((2, 60.0),))})
    assert status(limited, "1").status_code == 200
    assert status(limited, "1").status_code == 200
    assert status(limited, "1").status_code == 429


def test_without_wait_the_status_route_answers_as_before(deps: Dependencies) -> None:
    response = status(deps, None)
    assert response.status_code == 200
    assert json.loads(response.get_body())["state"] == State.IN_PROGRESS.value


def test_the_status_function_is_asynchronous_so_a_wait_holds_no_worker_thread() -> None:
    from registry.blueprints import registration_api

    [function] = [
        f for f in registration_api.bp._function_builders if f._function._name == "registration_status"
    ]
    assert asyncio.iscoroutinefunction(function._function._func)
    assert ROUTES["registration_status"].endpoint.watch is not None
