"""End to end: the host is killed (SIGKILL) between a change and its webhook delivery, and during
the delivery itself; after a restart the event still arrives, with the same id."""

from __future__ import annotations

import threading

import pytest

from tests.conftest import Sources
from tests.e2e.conftest import LocalHost
from tests.e2e.helpers import body
from tests.e2e.receiver import Received, Receiver

pytestmark = pytest.mark.e2e
API = "/api/v1.0"
# The first run takes requests but runs no worker: the change waits in the outbox and its jobs
# on the queue when the host is killed.
NO_WORKER = {
    "AzureWebJobs.copy_worker.Disabled": "true",
    "AzureWebJobs.copy_poisoned.Disabled": "true",
    "AzureWebJobs.requeue_quiet_registrations.Disabled": "true",
}


def test_a_host_killed_before_or_during_a_delivery_still_delivers_the_same_event(
    host_env: dict[str, str], sources: Sources
) -> None:
    receiver = Receiver().start()
    env = host_env | {"REGISTRY_WEBHOOK_RETRY_BASE_SECONDS": "2"}
    first = LocalHost(env | NO_WORKER)
    first.start()
    try:
        alice = first.client("alice")
        created = alice.put(f"{API}/webhooks/crash", json={"url": receiver.url("/crash")})
        assert created.status_code == 201
        receiver.secrets["/crash"] = created.json()["secret"]
        assert alice.put(f"{API}/model/survivor/1.0", json=body(sources)).status_code == 202
        history = alice.get(f"{API}/model/survivor/1.0/alice/history").json()["events"]
        registered = next(e["id"] for e in history if e["type"] == "registered")
    finally:
        first.kill()  # the change is recorded; nothing was delivered
    assert receiver.received == []

    # Killed again, this time while the receiver holds the delivery of the next change.
    holding, release = threading.Event(), threading.Event()

    def hold(got: Received) -> None:
        if got.kind == "updated" and not holding.is_set():
            holding.set()
            release.wait(30)

    receiver.hold = hold
    second = LocalHost(env)
    second.start()
    try:
        alice = second.client("alice")
        got = receiver.wait_for("/crash", lambda got: "finished" in [r.kind for r in got])
        assert [r.webhook_id for r in got if r.kind == "registered"] == [registered]
        patch = alice.patch(f"{API}/model/survivor/1.0", json={"model_config": {"description": "held"}})
        assert patch.status_code == 200
        assert holding.wait(30), "the update was never delivered"
    finally:
        second.kill()  # mid-POST: the delivery's claim and its job message are left behind
        release.set()

    third = LocalHost(env)
    third.start()
    try:
        got = receiver.wait_for(
            "/crash", lambda got: [r.kind for r in got].count("updated") >= 2, timeout=120
        )
        updates = [r for r in got if r.kind == "updated"]
        assert updates[0].webhook_id == updates[1].webhook_id  # the same event, sent again
        assert receiver.refused == []
        log = third.client("alice").get(f"{API}/webhooks/crash/deliveries").json()["deliveries"]
        assert {d["status"] for d in log} == {"delivered"}
    finally:
        third.stop()
        receiver.stop()
