"""End to end: webhooks over HTTP, from a change on the local host to a real receiver on loopback
that verifies every signature with `standardwebhooks` (dev mode lets http on loopback through)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import Sources
from tests.e2e.conftest import LocalHost
from tests.e2e.helpers import body, register, wait
from tests.e2e.receiver import Received, Receiver

pytestmark = pytest.mark.e2e
API = "/api/v1.0"
EVERY_KIND = {"registered", "finished", "failed", "updated", "files_replaced", "cloned", "deleted"}
RETRY_BASE = 3  # seconds: delays of about 3, 9, 27 s (±20%), whole seconds on a Storage queue


@pytest.fixture(scope="module")
def hooks_host(host_env: dict[str, str]) -> Iterator[LocalHost]:
    with LocalHost(host_env | {"REGISTRY_WEBHOOK_RETRY_BASE_SECONDS": str(RETRY_BASE)}) as host:
        yield host


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    started = Receiver().start()
    yield started
    started.stop()


def subscribe(client: httpx.Client, receiver: Receiver, webhook_id: str, **settings: Any) -> str:
    path = f"/{client.headers['X-MS-CLIENT-PRINCIPAL-ID']}/{webhook_id}"
    created = client.put(f"{API}/webhooks/{webhook_id}", json={"url": receiver.url(path), **settings})
    assert created.status_code == 201, created.text
    receiver.secrets[path] = created.json()["secret"]
    shown = client.get(f"{API}/webhooks/{webhook_id}")
    assert shown.status_code == 200 and "secret" not in shown.json()
    assert receiver.secrets[path] not in shown.text
    return path


def history_ids(client: httpx.Client, name: str, version: str, owner: str) -> dict[str, str]:
    """id -> kind of every event in the model's history (its owner's view)."""
    page = client.get(f"{API}/model/{name}/{version}/{owner}/history", params={"limit": 1000})
    assert page.status_code == 200, page.text
    return {e["id"]: e["type"] for e in page.json()["events"]}


def patch(client: httpx.Client, name: str, change: dict[str, Any], version: str = "1.0") -> None:
    response = client.patch(f"{API}/model/{name}/{version}", json=change)
    assert response.status_code == 200, response.text


def kinds(got: list[Received]) -> list[str]:
    return [r.kind for r in got]


def test_every_event_type_arrives_once_per_id_signed(
    hooks_host: LocalHost, receiver: Receiver, sources: Sources
) -> None:
    alice = hooks_host.client("alice")
    path = subscribe(alice, receiver, "everything")

    register(alice, "hooked", "1.0", body(sources))
    patch(alice, "hooked", {"model_config": {"description": "described"}})
    patch(alice, "hooked", {"model_files": {"extra.txt": sources.upload("extra.txt", b"more")}})
    wait(alice, f"{API}/model/hooked/1.0/status")
    clone = alice.put(
        f"{API}/model/clone/hooked/2.0", json={"parent_version": "1.0", "parent_owner": "alice"}
    )
    assert clone.status_code == 202, clone.text
    wait(alice, clone.headers["Location"])
    broken = body(sources)
    broken["model_files"]["score.py"] = sources.url("never-uploaded.py")
    assert register(alice, "broken", "1.0", broken)["state"] == "Failed"
    told = {
        **history_ids(alice, "hooked", "1.0", "alice"),
        **history_ids(alice, "hooked", "2.0", "alice"),
        **history_ids(alice, "broken", "1.0", "alice"),
    }
    assert alice.delete(f"{API}/model/hooked/1.0").status_code == 200

    got = receiver.wait_for(path, lambda got: set(kinds(got)) >= EVERY_KIND and len(got) >= 10)
    ids = [r.webhook_id for r in got]
    assert len(ids) == len(set(ids)), kinds(got)  # once per id
    assert all(r.event["id"] == r.webhook_id and r.event["specversion"] == "1.0" for r in got)
    deleted = [r.webhook_id for r in got if r.kind == "deleted"]
    assert {r.webhook_id: r.kind for r in got} == told | {deleted[0]: "deleted"}  # the history's ids
    assert receiver.refused == []

    log = alice.get(f"{API}/webhooks/everything/deliveries", params={"limit": 100}).json()["deliveries"]
    assert {d["event_id"] for d in log} == set(ids)
    assert all(d["status"] == "delivered" and d["attempts"] == 1 and d["response_status"] == 200 for d in log)


def test_a_receiver_answering_500_twice_gets_a_third_attempt_after_growing_delays(
    hooks_host: LocalHost, receiver: Receiver, sources: Sources
) -> None:
    bob = hooks_host.client("bob")
    path = subscribe(bob, receiver, "flaky", events=["registered"])
    receiver.script[path] = [500, 500]

    response = bob.put(f"{API}/model/retried/1.0", json=body(sources))
    assert response.status_code == 202
    got = receiver.wait_for(path, lambda got: any(r.answered == 200 for r in got), timeout=90)

    assert [r.answered for r in got] == [500, 500, 200]
    assert len({r.webhook_id for r in got}) == 1  # the same event each time
    first, second = got[1].at - got[0].at, got[2].at - got[1].at
    assert RETRY_BASE * 0.8 - 0.5 <= first < second, (first, second)
    log = bob.get(f"{API}/webhooks/flaky/deliveries").json()["deliveries"]
    assert log[0]["attempts"] == 3 and log[0]["status"] == "delivered"
    assert log[0]["first_attempt_at"] < log[0]["last_attempt_at"] == log[0]["delivered_at"]


def test_a_receiver_that_is_down_during_the_change_gets_the_event_when_it_returns(
    hooks_host: LocalHost, sources: Sources
) -> None:
    carol = hooks_host.client("carol")
    down = Receiver().start()
    path = subscribe(carol, down, "later", events=["registered"])
    down.stop()
    try:
        assert carol.put(f"{API}/model/unheard/1.0", json=body(sources)).status_code == 202
        deliveries = f"{API}/webhooks/later/deliveries"
        for _ in range(300):  # until an attempt has failed against the closed port
            log = carol.get(deliveries).json()["deliveries"]
            if log and log[0]["attempts"] >= 1:
                break
            time.sleep(0.1)
        assert log[0]["status"] == "pending" and log[0]["error"] == "connection refused", log
        assert "next_attempt_at" in log[0]

        down.start()  # the same port, back up
        got = down.wait_for(path, lambda got: len(got) == 1, timeout=90)
        assert got[0].kind == "registered" and got[0].webhook_id == log[0]["event_id"]
        assert carol.get(deliveries).json()["deliveries"][0]["status"] == "delivered"
    finally:
        down.stop()


def test_a_private_model_never_reaches_another_owners_subscription(
    hooks_host: LocalHost, receiver: Receiver, sources: Sources
) -> None:
    dave, erin = hooks_host.client("dave"), hooks_host.client("erin")
    own = subscribe(dave, receiver, "mine")
    others = subscribe(erin, receiver, "watching", scope="visible", models=["shy*"])

    register(dave, "shymodel", "1.0", body(sources, private=True))
    patch(dave, "shymodel", {"model_config": {"description": "still private"}})
    patch(dave, "shymodel", {"model_config": {"private": False}})  # told: public from here
    patch(dave, "shymodel", {"model_config": {"description": "public now"}})
    patch(dave, "shymodel", {"model_config": {"private": True}})  # not told: private from here
    patch(dave, "shymodel", {"model_config": {"description": "private again"}})
    assert dave.delete(f"{API}/model/shymodel/1.0").status_code == 200

    mine = receiver.wait_for(own, lambda got: "deleted" in kinds(got))
    assert kinds(mine) == ["registered", "finished", *["updated"] * 5, "deleted"]
    heard = receiver.wait_for(others, lambda got: len(got) >= 2)
    changes = [r.event["data"]["changes"] for r in heard]
    assert kinds(heard) == ["updated", "updated"], changes
    assert changes[0]["private"] == {"from": True, "to": False}
    assert changes[1]["description"]["to"] == "public now"
    assert {r.webhook_id for r in heard} <= {r.webhook_id for r in mine}
    time.sleep(3 * RETRY_BASE)  # anything else would have arrived by now
    assert len(receiver.at(others)) == 2
    assert "erin" not in hooks_host.client("erin").get(f"{API}/webhooks/mine").text  # Dave's, not Erin's
    assert hooks_host.client("erin").get(f"{API}/webhooks/mine").status_code == 404
