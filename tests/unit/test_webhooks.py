"""Webhooks on the in-memory fakes: subscriptions, the fan-out and its visibility rule, signed
deliveries, retries with backoff, disabling, redelivery, rotation and the delivery log."""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from registry.domain.errors import StorageUnavailable
from registry.domain.events import Event, EventType
from registry.domain.jobs import DeliveryJob
from registry.domain.webhooks import (
    RETRY_WINDOW,
    Attempt,
    DeliveryStatus,
    retry_delay,
)
from registry.identity import Principal
from registry.sealing import Sealer
from registry.services import webhook_delivery, webhooks
from registry.services.maintenance import reseal_all
from registry.services.registration import Conflict
from registry.services.sweep import sweep
from registry.settings import SettingsError
from registry.validation import InvalidRequest
from tests.builders import TEST_SEALING_KEY, make_settings
from tests.fakes import FakeClock, Post
from tests.world import ALICE, BOB, CAROL, World

HOOK = "https://hooks.example.com/registry?token=abc123"


@pytest.fixture
def world() -> World:
    # The clock starts now: receivers check that a signature's timestamp is recent.
    now = FakeClock(datetime.now(UTC).replace(microsecond=0))
    return World(settings=make_settings(REGISTRY_BASE_URL="https://registry.example.com"), now=now)


def register(world: World, name: str = "codegen", *, private: bool = True) -> None:
    """Register and finish a model, a second apart (so its events keep their order)."""
    world.register(name, private=private, finish=False)
    world.now.advance(1)
    world.run_queue()


def subscribe(world: World, caller: Principal = ALICE, webhook_id: str = "hook", **body: Any) -> str:
    """Create a subscription; returns its secret."""
    saved = webhooks.save(world.deps, caller, webhook_id, {"url": HOOK, **body})
    assert saved.created and saved.secret is not None
    return saved.secret


def received(world: World, caller: Principal = ALICE, webhook_id: str = "hook") -> list[dict[str, Any]]:
    """The CloudEvents POSTed to one subscription (told apart by the URL each was given)."""
    return [json.loads(p.body) for p in world.receiver.posts if p.url == url_of(caller, webhook_id)]


def fanout_of(world: World) -> webhook_delivery.WebhookFanout:
    [fanout] = [s for s in world.deps.event_sinks if isinstance(s, webhook_delivery.WebhookFanout)]
    return fanout


def url_of(caller: Principal, webhook_id: str) -> str:
    return f"https://{caller.id}.hooks.example.com/{webhook_id}"


def subscribe_at_own_url(world: World, caller: Principal, webhook_id: str = "hook", **body: Any) -> str:
    saved = webhooks.save(world.deps, caller, webhook_id, {"url": url_of(caller, webhook_id), **body})
    assert saved.secret is not None
    return saved.secret


def kinds(events: list[dict[str, Any]]) -> list[str]:
    return [e["type"].removeprefix("registry.model.") for e in events]


def make_public(world: World, public: bool = True, caller: Principal = ALICE) -> None:
    world.update({"model_config": {"private": not public}}, caller=caller)


# -- subscriptions --------------------------------------------------------------------------------


def test_the_secret_is_shown_once_and_reading_the_webhook_never_shows_it(world: World) -> None:
    secret = subscribe(world, events=["finished"], models=["codegen"], description="CI")
    assert secret.startswith("whsec_") and len(secret) > 40

    found = webhooks.get(world.deps, ALICE, "hook")
    listed = webhooks.list_own(world.deps, ALICE)
    assert found.url == HOOK and [w.subscription.id for w in listed] == ["hook"]
    assert found.subscription.events == ("finished",) and found.subscription.models == ("codegen",)
    assert secret not in repr(found) + repr(listed)
    replaced = webhooks.save(world.deps, ALICE, "hook", {"url": HOOK})
    assert not replaced.created and replaced.secret is None


def test_the_url_and_the_secret_are_sealed_at_rest(world: World) -> None:
    secret = subscribe(world)
    stored = world.webhooks.peek(ALICE.id, "hook")
    assert stored is not None
    row = repr(stored).encode() + stored.sealed
    assert secret.encode() not in row and secret.removeprefix("whsec_").encode() not in row
    assert b"abc123" not in row and b"hooks.example.com" not in row


def test_a_webhook_is_its_owners_alone(world: World) -> None:
    subscribe(world)
    with pytest.raises(webhooks.Missing):
        webhooks.get(world.deps, BOB, "hook")
    with pytest.raises(webhooks.Missing):
        webhooks.delete(world.deps, BOB, "hook")
    assert webhooks.list_own(world.deps, BOB) == []
    subscribe(world, BOB)  # the same id is Bob's own
    assert webhooks.get(world.deps, ALICE, "hook").url == HOOK


def test_an_owner_has_at_most_the_configured_number_of_webhooks(world: World) -> None:
    world.settings = make_settings(REGISTRY_MAX_WEBHOOKS="3")
    for n in range(3):
        subscribe(world, webhook_id=f"hook-{n}")
    with pytest.raises(Conflict, match="at most 3 webhooks"):
        subscribe(world, webhook_id="hook-3")
    webhooks.save(world.deps, ALICE, "hook-0", {"url": HOOK})  # replacing one is not adding one
    webhooks.delete(world.deps, ALICE, "hook-0")
    subscribe(world, webhook_id="hook-3")


@pytest.mark.parametrize(
    ("body", "field", "rule"),
    [
        ({"url": "http://hooks.example.com/x"}, "url", "must use https"),
        ({"url": "https://10.0.0.1/x"}, "url", "no IP address"),
        ({"url": "https://[::1]/x"}, "url", "no IP address"),
        ({"url": "https://localhost/x"}, "url", "DNS name"),
        ({"url": "https://user:pw@hooks.example.com/x"}, "url", "user credentials"),
        ({"url": "https://hooks.example.com/x#frag"}, "url", "fragment"),
        ({"url": "ftp://hooks.example.com/x"}, "url", "absolute https URL"),
        ({"url": "https://hooks.example.com:0/x"}, "url", "invalid port"),
        ({"url": "https://hooks.example.com/a b"}, "url", "whitespace"),
        ({"url": "https://hooks.example.com/%00"}, "url", "control characters"),
        ({"url": HOOK, "events": ["exploded"]}, "events[0]", "must be one of"),
        ({"url": HOOK, "events": []}, "events", "at least 1 item"),
        ({"url": HOOK, "models": ["co*"]}, "models[0]", "at least 3"),
        ({"url": HOOK, "models": ["a/b"]}, "models[0]", "a model name"),
        ({"url": HOOK, "scope": "everyone"}, "scope", "'own' or 'visible'"),
        ({"url": HOOK, "secret": "mine"}, "secret", "unknown field"),
        ({"events": ["finished"]}, "url", "field required"),
    ],
)
def test_an_invalid_subscription_is_refused_naming_the_field_and_the_rule(
    world: World, body: dict[str, Any], field: str, rule: str
) -> None:
    with pytest.raises(InvalidRequest) as refused:
        webhooks.save(world.deps, ALICE, "hook", body)
    assert any(e.field == field and rule in e.rule for e in refused.value.errors), refused.value.errors
    assert webhooks.list_own(world.deps, ALICE) == []


def test_an_invalid_id_is_refused(world: World) -> None:
    with pytest.raises(InvalidRequest, match="id"):
        webhooks.save(world.deps, ALICE, "no/slashes", {"url": HOOK})


def test_dev_mode_takes_a_receiver_on_loopback_over_http() -> None:
    world = World(settings=make_settings(REGISTRY_DEV_MODE="true"))
    saved = webhooks.save(world.deps, ALICE, "local", {"url": "http://127.0.0.1:8123/hook"})
    assert saved.webhook.url == "http://127.0.0.1:8123/hook"
    with pytest.raises(InvalidRequest, match="https"):
        webhooks.save(world.deps, ALICE, "lan", {"url": "http://192.168.1.10/hook"})


# -- the fan-out and its visibility rule ---------------------------------------------------------


def test_an_owner_hears_every_change_of_a_private_model_and_nobody_else_does(world: World) -> None:
    subscribe_at_own_url(world, ALICE)
    subscribe_at_own_url(world, BOB, scope="visible")
    subscribe_at_own_url(world, CAROL)

    register(world)
    world.now.advance(1)
    world.update({"model_config": {"description": "new words"}})
    world.now.advance(1)
    world.delete()
    world.pump()

    assert kinds(received(world, ALICE)) == ["registered", "finished", "updated", "deleted"]
    assert received(world, BOB) == [] and received(world, CAROL) == []
    ids = [e["id"] for e in received(world, ALICE)]
    assert ids == [e.id for e in reversed(world.history())]  # the ids the history shows


def test_others_hear_of_a_model_only_while_it_is_public(world: World) -> None:
    subscribe_at_own_url(world, ALICE)
    subscribe_at_own_url(world, BOB, scope="visible")
    subscribe_at_own_url(world, CAROL, scope="own")  # Carol asked for her own models only

    steps: list[Callable[[], object]] = [
        lambda: world.update({"model_config": {"description": "public words"}}),
        lambda: make_public(world, False),  # the change that makes it private is not told to others
        lambda: world.update({"model_config": {"description": "private words"}}),
        lambda: make_public(world, True),  # public again: told
        lambda: world.update({"model_config": {"description": "public again"}}),
        world.delete,  # it was public: those who could see it hear it went
    ]
    register(world, private=False)  # accepted while not yet listed: others hear of it once finished
    for step in steps:
        world.now.advance(1)
        step()
    world.pump()

    alice, bob = received(world, ALICE), received(world, BOB)
    assert kinds(alice) == ["registered", "finished", *["updated"] * 5, "deleted"]
    assert kinds(bob) == ["finished", "updated", "updated", "updated", "deleted"]
    descriptions = [e["data"].get("changes", {}).get("description", {}).get("to") for e in bob]
    assert "private words" not in descriptions and "public again" in descriptions
    assert received(world, CAROL) == []
    told = {e["id"]: e for e in alice}
    assert all(told[e["id"]] == e for e in bob)  # the same events, the same ids


def test_filters_narrow_by_event_type_and_model_name(world: World) -> None:
    subscribe_at_own_url(world, BOB, "exact", scope="visible", models=["codegen"], events=["finished"])
    subscribe_at_own_url(world, BOB, "prefix", scope="visible", models=["code*"])
    subscribe_at_own_url(world, BOB, "other", scope="visible", models=["bert", "gpt*"])
    subscribe_at_own_url(world, ALICE, "mine", models=["codeg*"], events=["updated", "deleted"])

    world.register(private=False)
    world.register("codesearch", private=False)
    world.update({"model_config": {"description": "x"}})
    world.pump()

    assert [
        (e["subject"], k)
        for e, k in zip(received(world, BOB, "exact"), kinds(received(world, BOB, "exact")), strict=True)
    ] == [(f"models/{ALICE.id}/codegen/1.0", "finished")]
    assert {e["subject"].split("/")[2] for e in received(world, BOB, "prefix")} == {"codegen", "codesearch"}
    assert received(world, BOB, "other") == []
    assert kinds(received(world, ALICE, "mine")) == ["updated"]


def test_a_repeated_dispatch_delivers_nothing_twice(world: World) -> None:
    subscribe_at_own_url(world, ALICE)
    world.register(finish=False)
    pending = world.store.pending_events(ALICE.id)
    sink = fanout_of(world)
    sink.publish(pending)
    sink.publish(pending)  # handed over again: a dispatcher that died before emptying the outbox
    world.pump()
    world.pump()

    assert kinds(received(world, ALICE)) == ["registered"]
    assert len(world.webhooks.all_deliveries()) == 1


def test_a_dispatch_that_stopped_before_its_job_was_sent_sends_it_the_next_time(world: World) -> None:
    subscribe_at_own_url(world, ALICE)
    world.register(finish=False)
    world.queue.failing = True
    world.pump()  # the delivery is recorded, its job is not sent: the events stay in the outbox
    assert received(world, ALICE) == [] and world.store.pending_events(ALICE.id)
    world.queue.failing = False
    world.pump()
    assert kinds(received(world, ALICE)) == ["registered"]


def test_duplicate_jobs_of_one_delivery_post_once(world: World) -> None:
    subscribe_at_own_url(world, ALICE)
    world.register(finish=False)
    pending = world.store.pending_events(ALICE.id)
    fanout_of(world).publish(pending)
    fanout_of(world).publish(pending)  # a concurrent dispatch: its first job is sent again
    jobs = [s.job for s in world.queue.sent if isinstance(s.job, DeliveryJob)]
    assert len(jobs) == 2 and jobs[0] == jobs[1]

    first, second = jobs
    assert isinstance(first, DeliveryJob) and isinstance(second, DeliveryJob)
    world.queue.sent.clear()
    during: list[str] = []

    def answer(post: Post) -> Attempt:  # the duplicate runs while the first attempt is under way
        during.append(webhook_delivery.deliver(world.deps, second))
        return Attempt(200, "", 5)

    world.receiver.answer = answer
    assert webhook_delivery.deliver(world.deps, first) == "delivered"
    assert during == ["busy"]  # the attempt was claimed: it comes back when the claim ends
    comeback = world.queue.sent[0]
    assert comeback.delay_seconds == 31 and isinstance(comeback.job, DeliveryJob)
    assert webhook_delivery.deliver(world.deps, comeback.job) == "stale"
    assert len(world.receiver.posts) == 1


def test_a_disabled_or_deleted_webhook_gets_nothing(world: World) -> None:
    subscribe_at_own_url(world, ALICE, "kept")
    subscribe_at_own_url(world, ALICE, "gone")
    world.register(finish=False)
    webhooks.delete(world.deps, ALICE, "gone")
    world.pump()
    assert kinds(received(world, ALICE, "kept")) == ["registered"] and received(world, ALICE, "gone") == []
    assert world.webhooks.all_deliveries()[0].subscription_id == "kept"


# -- what is sent ------------------------------------------------------------------------------


def test_each_delivery_is_a_cloudevent_signed_per_standard_webhooks(world: World) -> None:
    secret = subscribe(world)
    world.register(private=True)
    world.pump()

    for post in world.receiver.posts:
        event = Webhook(secret).verify(post.body, post.headers)
        assert post.headers["webhook-id"] == event["id"]
        assert event["specversion"] == "1.0" and event["source"] == "https://registry.example.com"
        assert event["subject"] == f"models/{ALICE.id}/codegen/1.0"
        assert "sig=" not in post.body.decode()  # never a SAS
        with pytest.raises(WebhookVerificationError):
            Webhook(subscribe(world, BOB, f"x{post.headers['webhook-id'][:8]}")).verify(
                post.body, post.headers
            )


def test_after_a_rotation_both_secrets_sign_for_a_day_then_only_the_new_one(world: World) -> None:
    old = subscribe(world)
    _, new = webhooks.rotate_secret(world.deps, ALICE, "hook")
    found = webhooks.get(world.deps, ALICE, "hook").subscription
    assert new != old and found.previous_secret_until == world.now() + timedelta(hours=24)

    world.register(finish=False)
    world.pump()
    post = world.receiver.posts[-1]
    assert len(post.headers["webhook-signature"].split(" ")) == 2
    Webhook(old).verify(post.body, post.headers)
    Webhook(new).verify(post.body, post.headers)

    world.now.advance(24 * 3600 + 1)
    world.update({"model_config": {"description": "later"}})
    world.pump()
    later = world.receiver.posts[-1]
    stamp = datetime.fromtimestamp(int(later.headers["webhook-timestamp"]), UTC)
    # A day on (the receivers' clock check aside): signed by the new secret alone.
    assert later.headers["webhook-signature"] == Webhook(new).sign(
        later.headers["webhook-id"], stamp, later.body.decode()
    )


def test_no_secret_is_ever_logged(world: World, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    secrets = [subscribe(world)]
    secrets.append(webhooks.rotate_secret(world.deps, ALICE, "hook")[1])
    world.receiver.answers = [Attempt(500, "", 3)]
    world.register(private=True)
    world.pump()
    text = caplog.text + "".join(repr(r.args) for r in caplog.records)
    assert "webhook" in text  # the deliveries are logged, without what is secret
    for secret in secrets:
        assert secret not in text and secret.removeprefix("whsec_") not in text
    assert "abc123" not in text


# -- retries, disabling, redelivery --------------------------------------------------------------


def test_the_production_retry_schedule_grows_within_its_jitter_bounds() -> None:
    nominal = [30, 90, 270, 810, 2430, 7290, 21600, 21600, 21600]
    low, high = random.Random(0), random.Random(0)
    low.uniform = lambda a, b: a  # type: ignore[method-assign]
    high.uniform = lambda a, b: b  # type: ignore[method-assign]
    for attempts, seconds in enumerate(nominal, start=1):
        assert retry_delay(attempts, 30, low) == pytest.approx(seconds * 0.8)
        assert retry_delay(attempts, 30, high) == pytest.approx(seconds * 1.2)
    drawn = random.Random(7)
    for attempts in range(1, 7):  # until the cap, even the shortest draw outgrows the longest before
        assert retry_delay(attempts + 1, 30, low) > retry_delay(attempts, 30, high)
        assert 0.8 * nominal[attempts - 1] <= retry_delay(attempts, 30, drawn) <= 1.2 * nominal[attempts - 1]


def _run_retries(world: World, limit: int = 30) -> list[float]:
    """Run delayed webhook jobs as the queue would make them visible: the clock moves to each."""
    delays: list[float] = []
    for _ in range(limit):
        world.pump()
        waiting = [s for s in world.queue.sent if isinstance(s.job, DeliveryJob)]
        if not waiting:
            return delays
        sent = waiting[0]
        world.queue.sent.remove(sent)
        delays.append(sent.delay_seconds)
        world.now.advance(sent.delay_seconds)
        assert isinstance(sent.job, DeliveryJob)
        webhook_delivery.deliver(world.deps, sent.job)
    raise AssertionError("the retries never ended")


def test_a_receiver_failing_twice_gets_a_third_attempt_after_growing_delays(world: World) -> None:
    subscribe(world)
    world.receiver.answers = [Attempt(500, "", 3), Attempt(None, "timed out", 15000)]
    world.register(finish=False)
    delays = _run_retries(world)

    assert len(world.receiver.posts) == 3
    assert 24 <= delays[0] <= 36 and 72 <= delays[1] <= 108 and delays[1] > delays[0]
    delivery = world.webhooks.all_deliveries()[0]
    assert delivery.status is DeliveryStatus.DELIVERED and delivery.attempts == 3
    assert delivery.response_status == 200 and delivery.delivered_at == world.now()
    assert {p.headers["webhook-id"] for p in world.receiver.posts} == {delivery.event_id}
    found = webhooks.get(world.deps, ALICE, "hook").subscription
    assert found.enabled and found.failing_since is None  # failing, then fine again


def test_a_webhook_failing_for_a_whole_day_is_given_up_and_disabled_with_the_reason(world: World) -> None:
    subscribe(world)
    world.receiver.answer = lambda post: Attempt(503, "", 2)
    world.register(finish=False)
    delays = _run_retries(world)

    delivery = world.webhooks.all_deliveries()[0]
    assert delivery.status is DeliveryStatus.FAILED and delivery.attempts == len(delays) + 1
    assert 9 <= delivery.attempts <= 11  # about ten in 24 hours, as the jitter falls
    assert delivery.first_attempt_at is not None and delivery.last_attempt_at is not None
    assert delivery.last_attempt_at - delivery.first_attempt_at <= RETRY_WINDOW
    found = webhooks.get(world.deps, ALICE, "hook").subscription
    assert (
        not found.enabled
        and "failed for 24 hours" in found.disabled_reason
        and "HTTP 503" in found.disabled_reason
    )

    world.update({"model_config": {"description": "while disabled"}})
    world.pump()
    assert len(world.receiver.posts) == delivery.attempts  # a disabled webhook is sent nothing
    with pytest.raises(Conflict, match="disabled"):
        webhooks.redeliver(world.deps, ALICE, "hook", delivery.event_id)

    world.receiver.answer = None
    webhooks.save(world.deps, ALICE, "hook", {"url": HOOK})  # PUT again: enabled
    assert webhooks.get(world.deps, ALICE, "hook").subscription.enabled
    webhooks.redeliver(world.deps, ALICE, "hook", delivery.event_id)
    world.pump()
    assert world.webhooks.all_deliveries()[-1].status is DeliveryStatus.DELIVERED


def test_a_redelivery_sends_the_event_once_more_with_the_same_id(world: World) -> None:
    subscribe(world)
    world.register(finish=False)
    world.pump()
    first = world.receiver.posts[0]
    event_id = first.headers["webhook-id"]

    webhooks.redeliver(world.deps, ALICE, "hook", event_id)
    world.receiver.answers = [Attempt(500, "", 1)]
    world.pump()
    assert [p.headers["webhook-id"] for p in world.receiver.posts] == [event_id, event_id]
    assert world.receiver.posts[1].body == first.body
    delivery = world.webhooks.all_deliveries()[0]
    assert delivery.status is DeliveryStatus.FAILED and delivery.attempts == 2  # once: no retries
    assert not [s for s in world.queue.sent if isinstance(s.job, DeliveryJob)]
    with pytest.raises(webhooks.Missing):
        webhooks.redeliver(world.deps, ALICE, "hook", "0" * 32)
    with pytest.raises(InvalidRequest):
        webhooks.redeliver(world.deps, ALICE, "hook", "not-an-id")


def test_a_job_for_an_attempt_already_made_does_nothing(world: World) -> None:
    subscribe(world)
    world.register(finish=False)
    events_before = world.store.pending_events(ALICE.id)
    world.pump()
    delivery = world.webhooks.all_deliveries()[0]
    duplicate = webhook_delivery.job_for(delivery)
    stale = DeliveryJob(duplicate.owner, duplicate.subscription_id, duplicate.event_id, duplicate.event_time)
    assert webhook_delivery.deliver(world.deps, stale) == "stale"
    assert len(world.receiver.posts) == 1 and events_before


def test_a_delivery_for_a_filter_changed_meanwhile_is_skipped(world: World) -> None:
    subscribe(world)
    world.register(finish=False)
    events = world.store.pending_events(ALICE.id)
    fanout_of(world).publish(events)
    webhooks.save(world.deps, ALICE, "hook", {"url": HOOK, "events": ["deleted"]})
    world.pump()
    assert world.receiver.posts == []
    delivery = world.webhooks.all_deliveries()[0]
    assert delivery.status is DeliveryStatus.SKIPPED and "no longer asks" in delivery.error


# -- the delivery log ----------------------------------------------------------------------------


def test_the_delivery_log_pages_newest_first_with_timing(world: World) -> None:
    subscribe(world)
    register(world)
    for n in range(4):
        world.now.advance(1)
        world.update({"model_config": {"description": f"words {n}"}})
    world.pump()

    seen, token = [], None
    for _ in range(10):
        page = webhooks.deliveries(world.deps, ALICE, "hook", 2, token)
        seen += page.deliveries
        token = page.continuation
        if token is None:
            break
    assert [d.event.type for d in seen] == [EventType.UPDATED] * 4 + [
        EventType.FINISHED,
        EventType.REGISTERED,
    ]
    assert all(d.status is DeliveryStatus.DELIVERED and d.duration_ms == 5 and d.delivered_at for d in seen)
    subscribe(world, BOB)
    with pytest.raises(InvalidRequest, match="continuation"):
        webhooks.deliveries(
            world.deps, BOB, "hook", 2, webhooks.deliveries(world.deps, ALICE, "hook", 1, None).continuation
        )


def test_the_sweep_prunes_deliveries_older_than_thirty_days(world: World) -> None:
    subscribe(world)
    world.register(finish=False)
    world.pump()
    world.now.advance(29 * 86400)
    world.update({"model_config": {"description": "recent"}})
    world.pump()
    assert sweep(world.deps).pruned == 0  # nothing is 30 days old yet
    world.now.advance(2 * 86400)
    assert sweep(world.deps).pruned == 1
    assert [d.event.type for d in world.webhooks.all_deliveries()] == [EventType.UPDATED]
    assert sweep(world.deps).pruned == 0  # pruned once a day


def test_deleting_a_webhook_removes_its_index_rows_and_its_log(world: World) -> None:
    subscribe(world, scope="visible", models=["codegen", "bert*"])
    assert len(world.webhooks.listener_keys()) == 2
    world.register(finish=False)
    world.pump()
    webhooks.delete(world.deps, ALICE, "hook")
    assert world.webhooks.listener_keys() == [] and world.webhooks.all_deliveries() == []


def test_the_listeners_index_follows_scope_and_enabled(world: World) -> None:
    subscribe(world, scope="visible")
    assert world.webhooks.listener_keys() == [f"*|{ALICE.id}|hook"]
    webhooks.save(world.deps, ALICE, "hook", {"url": HOOK, "scope": "own"})
    assert world.webhooks.listener_keys() == []


def test_an_event_of_another_owner_reaches_a_visible_subscription_only_if_public() -> None:
    world = World()
    subscribe(world, BOB, scope="visible")
    fanout = fanout_of(world)
    private = Event(EventType.UPDATED, ALICE.id, "codegen", "1.0", world.now(), "c1", public=False)
    public = Event(EventType.UPDATED, ALICE.id, "codegen", "1.0", world.now(), "c2", public=True)
    assert fanout.targets(private, {}, {}) == []
    assert fanout.targets(public, {}, {}) == [(BOB.id, "hook")]


def _posts_of(world: World) -> list[Post]:
    return world.receiver.posts


# -- operations ----------------------------------------------------------------------------------


def test_reseal_moves_webhooks_to_the_current_sealing_key(world: World) -> None:
    secret = subscribe(world)
    old_key = world.sealer
    world.sealer = Sealer(bytes(range(100, 132)), previous=[TEST_SEALING_KEY])
    report = reseal_all(world.deps)
    assert report.ok and report.resealed >= 1
    stored = world.webhooks.peek(ALICE.id, "hook")
    assert (
        stored is not None
        and world.sealer.is_current(stored.sealed)
        and not old_key.is_current(stored.sealed)
    )
    assert webhooks.get(world.deps, ALICE, "hook").url == HOOK
    world.register(finish=False)
    world.pump()
    Webhook(secret).verify(world.receiver.posts[0].body, world.receiver.posts[0].headers)

    world.sealer = Sealer(bytes(range(200, 232)))  # a key that opens nothing stored
    assert f"webhook {ALICE.id}/hook" in (reseal_all(world.deps).unreadable or [])


def test_the_webhook_settings_have_production_defaults() -> None:
    settings = make_settings()
    assert (settings.max_webhooks, settings.webhook_retry_base_seconds) == (25, 30)
    assert (settings.webhooks_table, settings.webhook_deliveries_table) == ("webhooks", "webhookdeliveries")
    tuned = make_settings(REGISTRY_MAX_WEBHOOKS="3", REGISTRY_WEBHOOK_RETRY_BASE_SECONDS="0.5")
    assert (tuned.max_webhooks, tuned.webhook_retry_base_seconds) == (3, 0.5)
    with pytest.raises(SettingsError):
        make_settings(REGISTRY_WEBHOOK_RETRY_BASE_SECONDS="0")


def test_a_delivery_job_that_ends_in_the_poison_queue_fails_its_delivery(world: World) -> None:
    subscribe(world)
    world.register(finish=False)
    world.webhooks.unavailable.add("subscription")  # the registry's own storage keeps failing
    with pytest.raises(StorageUnavailable):
        world.pump()
    world.webhooks.unavailable.clear()
    job = webhook_delivery.job_for(world.webhooks.all_deliveries()[0])  # the message that kept failing
    assert webhook_delivery.give_up_poisoned(job.to_json(), world.deps, "StorageUnavailable")
    delivery = world.webhooks.all_deliveries()[0]
    assert delivery.status is DeliveryStatus.FAILED and "repeated errors" in delivery.error
    assert not webhook_delivery.give_up_poisoned(
        b'{"schema": 1, "kind": "dispatch", "owner": "x"}', world.deps
    )
    webhooks.redeliver(world.deps, ALICE, "hook", delivery.event_id)  # and it can be sent again
    world.pump()
    assert world.webhooks.all_deliveries()[0].status is DeliveryStatus.DELIVERED
