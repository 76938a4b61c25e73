"""Events over HTTP, on the local host and Azurite: a model's history (its owner's, and others'
while it is public, also after a delete for its owner) and the long-polled status."""

from __future__ import annotations

import os
import time
import uuid

from tests.conftest import Sources
from tests.e2e.conftest import LocalHost
from tests.e2e.helpers import MIB, body, register, wait

API = "/api/v1.0"


def test_the_history_tells_every_change_with_the_models_visibility(
    local_host: LocalHost, sources: Sources
) -> None:
    name = f"hist-{uuid.uuid4().hex[:8]}"
    alice, bob = local_host.client("alice"), local_host.client("bob")
    with alice, bob:
        assert register(alice, name, "1", body(sources, private=True))["state"] == "Finished"
        assert bob.get(f"{API}/model/{name}/1/alice/history").status_code == 404
        assert (
            alice.patch(f"{API}/model/{name}/1", json={"model_config": {"private": False}}).status_code == 200
        )
        assert (
            alice.patch(f"{API}/model/{name}/1", json={"model_config": {"description": "d"}}).status_code
            == 200
        )

        history = alice.get(f"{API}/model/{name}/1/alice/history")
        assert history.status_code == 200, history.text
        events = history.json()["events"]
        assert [e["type"] for e in events[:2]] == ["updated", "updated"]
        assert sorted(e["type"] for e in events[2:]) == ["finished", "registered"]
        assert events[0]["changes"] == {"description": {"from": "", "to": "d"}}
        assert events[1]["changes"] == {"private": {"from": True, "to": False}}
        assert events[0]["by"] == "alice"
        finished = next(e for e in events if e["type"] == "finished")
        manifest = alice.get(f"{API}/model/{name}/1/alice/manifest").json()
        assert finished["revision"] == manifest["revision"] == 1
        assert finished["manifest_digest"] == manifest["digest"]
        assert finished["by"] == "registry"
        assert len({e["id"] for e in events}) == len(events)

        # Others read what happened while the model was public, nothing of its private past.
        assert [e["type"] for e in bob.get(f"{API}/model/{name}/1/alice/history").json()["events"]] == [
            "updated",
            "updated",
        ]
        page = alice.get(f"{API}/model/{name}/1/alice/history", params={"limit": 3})
        rest = alice.get(page.links["next"]["url"])
        assert [e["id"] for e in page.json()["events"] + rest.json()["events"]] == [e["id"] for e in events]

        assert alice.delete(f"{API}/model/{name}/1").status_code == 200
        after = alice.get(f"{API}/model/{name}/1/alice/history").json()["events"]
        assert after[0]["type"] == "deleted" and after[0]["state"] == "Deleted"
        assert [e["id"] for e in after[1:]] == [e["id"] for e in events]
        assert bob.get(f"{API}/model/{name}/1/alice/history").status_code == 404


def test_a_long_polled_status_answers_when_the_copy_moves_on(local_host: LocalHost, sources: Sources) -> None:
    name = f"wait-{uuid.uuid4().hex[:8]}"
    with local_host.client("alice") as alice:
        response = alice.put(
            f"{API}/model/{name}/1", json=body(sources, {"weights.bin": os.urandom(24 * MIB)})
        )
        assert response.status_code == 202, response.text
        status_url = response.headers["Location"]
        before = alice.get(status_url).json()
        started = time.monotonic()
        moved = alice.get(status_url, params={"wait": 30}, timeout=40)
        assert moved.status_code == 200
        assert time.monotonic() - started < 25  # the copy's checkpoints end the wait long before 30 s
        assert moved.json() != before
        assert wait(alice, status_url)["state"] == "Finished"
        finished = alice.get(status_url, params={"wait": 1}).json()  # nothing changes: N seconds
        assert finished["state"] == "Finished"
