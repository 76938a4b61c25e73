"""End to end: the local Functions host serving function_app.py over HTTP, on the emulator."""

from __future__ import annotations

import os
import time

import httpx
import pytest
from azure.storage.blob import ContainerClient

from tests.conftest import Sources
from tests.e2e.conftest import LocalHost
from tests.e2e.helpers import body as registration_body
from tests.e2e.helpers import fetch, wait
from tests.e2e.openapi_conformance import ConformanceHook

pytestmark = pytest.mark.e2e
MIB = 1024 * 1024


def test_a_registration_is_accepted_copied_and_reported_finished(
    local_host: LocalHost, sources: Sources, models: ContainerClient
) -> None:
    weights = os.urandom(5 * MIB + 17)
    with local_host.client() as client:
        response = client.put(
            "/api/v1.0/model/summarizer/1.2.3",
            json=registration_body(sources, {"model/weights.bin": weights}),
        )
        assert response.status_code == 202, response.text
        status_url = response.headers["Location"]
        assert response.json()["status_url"] == status_url
        assert status_url.endswith("/api/v1.0/model/summarizer/1.2.3/status")

        status = wait(client, status_url)
        stored = fetch(client, "summarizer", "1.2.3", "alice", "model/weights.bin")

    assert status["state"] == "Finished", status
    assert {f["name"]: (f["state"], f["bytes_copied"], f["size"]) for f in status["files"]}[
        "model/weights.bin"
    ] == ("Finished", len(weights), len(weights))
    assert status["start_timestamp"] <= status["last_updated_timestamp"]
    assert stored == weights
    assert "sig=" not in str(status)


def test_another_principal_and_an_anonymous_caller_cannot_see_the_registration(
    local_host: LocalHost, sources: Sources
) -> None:
    with local_host.client("alice") as alice:
        assert (
            alice.put("/api/v1.0/model/private-one/1", json=registration_body(sources, {})).status_code == 202
        )
        assert alice.get("/api/v1.0/model/private-one/1/status").status_code == 200
    with local_host.client("mallory") as mallory:
        response = mallory.get("/api/v1.0/model/private-one/1/status")
        assert response.status_code == 404
        assert set(response.json()) >= {"message", "error_message"}
    with local_host.client(None) as anonymous:
        assert anonymous.get("/api/v1.0/model/private-one/1/status").status_code == 401
        assert (
            anonymous.put("/api/v1.0/model/private-one/2", json=registration_body(sources, {})).status_code
            == 401
        )


def test_bad_requests_are_refused_with_the_field_and_the_rule(
    local_host: LocalHost, sources: Sources
) -> None:
    body = registration_body(sources, {})
    body["model_config"]["type"] = "TRANSFORMER"
    del body["model_metainfo"]["index_page_file"]
    with local_host.client() as client:
        invalid = client.put("/api/v1.0/model/bad/1", json=body)
        not_json = client.put(
            "/api/v1.0/model/bad/1", content=b"<xml/>", headers={"Content-Type": "application/json"}
        )
        too_large = client.put(
            "/api/v1.0/model/bad/1",
            content=b"{" + b" " * (1024 * 1024) + b"}",
            headers={"Content-Type": "application/json"},
        )
        bad_name = client.put("/api/v1.0/model/-bad/1", json=registration_body(sources, {}))
        never_recorded = client.get("/api/v1.0/model/bad/1/status")

    assert invalid.status_code == 400
    message = invalid.json()["error_message"]
    assert "model_config.type" in message
    assert "model_metainfo.index_page_file" in message
    assert not_json.status_code == 415
    assert too_large.status_code == 413
    assert bad_name.status_code == 400
    assert "name" in bad_name.json()["error_message"]
    assert never_recorded.status_code == 404, "nothing of a refused request is left behind"


def test_replaying_the_same_body_is_safe_and_a_different_body_conflicts(
    local_host: LocalHost, sources: Sources
) -> None:
    body = registration_body(sources, {"w.bin": os.urandom(MIB)})
    with local_host.client() as client:
        first = client.put("/api/v1.0/model/replayed/1", json=body)
        finished = wait(client, first.headers["Location"])
        again = client.put("/api/v1.0/model/replayed/1", json=body)
        after = client.get(first.headers["Location"]).json()
        body["model_config"]["description"] = "something else"
        conflict = client.put("/api/v1.0/model/replayed/1", json=body)

    assert first.status_code == 202
    assert again.status_code == 202
    assert finished["state"] == after["state"] == "Finished"
    assert after["last_updated_timestamp"] == finished["last_updated_timestamp"], "no second copy ran"
    assert conflict.status_code == 409
    assert set(conflict.json()) >= {"message", "error_message"}


def test_a_host_killed_mid_copy_and_restarted_finishes_with_identical_bytes(
    host_env: dict[str, str], sources: Sources, models: ContainerClient
) -> None:
    weights = os.urandom(48 * MIB)
    host = LocalHost(host_env)
    host.start()
    try:
        with host.client() as client:
            response = client.put(
                "/api/v1.0/model/crashy/1", json=registration_body(sources, {"weights.bin": weights})
            )
            assert response.status_code == 202
            status_url = httpx.URL(response.headers["Location"]).path  # the restarted host gets a new port
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                status = client.get(status_url).json()
                copied = {f["name"]: f["bytes_copied"] for f in status["files"]}["weights.bin"]
                if copied > 0:
                    break
                time.sleep(0.02)
        assert status["state"] == "InProgress", status
        assert 0 < copied < len(weights), status
        host.kill()

        host.start()
        with host.client() as client:
            final = wait(client, status_url)
            stored = fetch(client, "crashy", "1", "alice", "weights.bin")
    finally:
        host.stop()
        print("".join(host.log[-80:]))

    assert final["state"] == "Finished", final
    assert stored == weights


def test_every_answer_is_checked_against_the_openapi_document(local_host: LocalHost) -> None:
    """The conformance hook of LocalHost.client() sees the host's answers, and fails a request whose
    answer the document does not describe (here: a method no route has)."""
    checked = ConformanceHook.checked
    with local_host.client("alice") as alice:
        assert alice.get("/api/v1.0/models").status_code == 200
        with pytest.raises(AssertionError, match=r"POST /api/v1\.0/models .*no operation"):
            alice.post("/api/v1.0/models", json={})

    assert ConformanceHook.checked == checked + 2
    assert ConformanceHook.mismatches.pop().startswith(
        "POST /api/v1.0/models"
    )  # expected: not this test's fault
