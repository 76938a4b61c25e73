"""The WebhookStore contract, on the in-memory fake and on the Table adapter (Azurite): the
subscriptions, the listeners' index that follows them, and the delivery logs."""

from __future__ import annotations

import copy
from datetime import timedelta

import pytest

from registry.domain.errors import AlreadyExists, ConcurrentUpdate
from registry.domain.events import Event, EventType
from registry.domain.webhooks import Attempt, Delivery, DeliveryStatus, Scope, Subscription
from registry.ports import WebhookStore
from tests.fakes import T0


def subscription(owner: str = "bob", webhook_id: str = "hook", **fields: object) -> Subscription:
    made = Subscription(owner, webhook_id, sealed=b"\x01sealed", created_at=T0, updated_at=T0, pruned_at=T0)
    for name, value in fields.items():
        setattr(made, name, value)
    return made


def event(minute: int = 0, name: str = "codegen", owner: str = "alice") -> Event:
    return Event(
        EventType.FINISHED,
        owner,
        name,
        "1.0",
        T0 + timedelta(minutes=minute),
        f"change-{minute}",
        public=True,
        data={"state": "Finished", "revision": 1},
    )


def test_a_subscription_round_trips_and_a_second_create_is_refused(webhook_store: WebhookStore) -> None:
    made = subscription(events=("finished", "failed"), models=("codegen", "bert*"), scope=Scope.VISIBLE)
    made.description = "CI hook"
    made.failing_since = T0 + timedelta(minutes=3)
    webhook_store.save_subscription(made, None)

    found = webhook_store.subscription("bob", "hook")
    assert found is not None and found.etag
    assert (found.events, found.models, found.scope, found.description) == (
        ("finished", "failed"),
        ("codegen", "bert*"),
        Scope.VISIBLE,
        "CI hook",
    )
    assert found.sealed == b"\x01sealed" and found.failing_since == T0 + timedelta(minutes=3)
    assert found.disabled_at is None and found.enabled
    with pytest.raises(AlreadyExists):
        webhook_store.save_subscription(subscription(), None)
    assert webhook_store.subscription("alice", "hook") is None
    assert [s.id for s in webhook_store.subscriptions("bob")] == ["hook"]


def test_a_replace_of_a_stale_read_is_refused(webhook_store: WebhookStore) -> None:
    webhook_store.save_subscription(subscription(), None)
    first = webhook_store.subscription("bob", "hook")
    assert first is not None
    changed = copy.deepcopy(first)
    changed.description = "first"
    webhook_store.save_subscription(changed, first)
    late = copy.deepcopy(first)
    late.description = "late"
    with pytest.raises(ConcurrentUpdate):
        webhook_store.save_subscription(late, first)
    found = webhook_store.subscription("bob", "hook")
    assert found is not None and found.description == "first"


def test_listeners_are_the_visible_subscriptions_whose_filter_takes_the_name(
    webhook_store: WebhookStore,
) -> None:
    webhook_store.save_subscription(subscription("bob", "all", scope=Scope.VISIBLE), None)
    webhook_store.save_subscription(
        subscription("carol", "exact", scope=Scope.VISIBLE, models=("codegen",), events=("finished",)), None
    )
    webhook_store.save_subscription(
        subscription("dave", "prefix", scope=Scope.VISIBLE, models=("code*",)), None
    )
    webhook_store.save_subscription(
        subscription("erin", "longer", scope=Scope.VISIBLE, models=("codes*",)), None
    )
    webhook_store.save_subscription(subscription("frank", "own", models=("codegen",)), None)
    webhook_store.save_subscription(
        subscription("grace", "other", scope=Scope.VISIBLE, models=("codegen2",)), None
    )

    found = sorted(webhook_store.listeners("codegen"))
    assert found == [
        ("bob", "all", ()),
        ("carol", "exact", ("finished",)),
        ("dave", "prefix", ()),
    ]
    assert sorted(x[1] for x in webhook_store.listeners("codesearch")) == ["all", "longer", "prefix"]
    assert [x[1] for x in webhook_store.listeners("gpt")] == ["all"]
    assert [x[1] for x in webhook_store.listeners("co")] == ["all"]


def test_the_index_follows_a_replace_a_disable_and_a_delete(webhook_store: WebhookStore) -> None:
    made = webhook_store.save_subscription(subscription(scope=Scope.VISIBLE, models=("codegen",)), None)
    narrowed = copy.deepcopy(made)
    narrowed.models = ("bert",)
    webhook_store.save_subscription(narrowed, made)
    assert webhook_store.listeners("codegen") == [] and len(webhook_store.listeners("bert")) == 1

    disabled = copy.deepcopy(narrowed)
    disabled.disable(T0, "failing")
    webhook_store.save_subscription(disabled, narrowed)
    assert webhook_store.listeners("bert") == []
    found = webhook_store.subscription("bob", "hook")
    assert found is not None and not found.enabled and found.disabled_reason == "failing"

    enabled = copy.deepcopy(found)
    enabled.enable()
    webhook_store.save_subscription(enabled, found)
    assert len(webhook_store.listeners("bert")) == 1
    webhook_store.delete_subscription(enabled)
    webhook_store.delete_subscription(enabled)  # idempotent
    assert webhook_store.listeners("bert") == [] and webhook_store.subscription("bob", "hook") is None


def test_a_delivery_is_recorded_once_per_event_and_updated_if_unchanged(webhook_store: WebhookStore) -> None:
    first = Delivery("bob", "hook", event(1), created_at=T0)
    assert webhook_store.add_delivery(first)
    assert not webhook_store.add_delivery(
        Delivery("bob", "hook", event(1), created_at=T0 + timedelta(seconds=9))
    )
    assert webhook_store.add_delivery(
        Delivery("carol", "hook", event(1), created_at=T0)
    )  # another subscription

    read = webhook_store.delivery("bob", "hook", event(1).time, event(1).id)
    assert read is not None and read.event == event(1) and read.attempts == 0
    assert read.status is DeliveryStatus.PENDING and read.first_attempt_at is None
    read.attempted(T0 + timedelta(minutes=2), Attempt(503, "", 42))
    read.next_attempt_at = T0 + timedelta(minutes=3)
    stale = copy.deepcopy(read)
    webhook_store.save_delivery(read)
    with pytest.raises(ConcurrentUpdate):
        webhook_store.save_delivery(stale)

    found = webhook_store.find_delivery("bob", "hook", event(1).id)
    assert found is not None and found.attempts == 1 and found.response_status == 503
    assert found.duration_ms == 42 and found.next_attempt_at == T0 + timedelta(minutes=3)
    assert webhook_store.find_delivery("bob", "hook", event(2).id) is None


def test_the_log_pages_newest_first_and_prunes_the_oldest(webhook_store: WebhookStore) -> None:
    for minute in range(5):
        webhook_store.add_delivery(Delivery("bob", "hook", event(minute), created_at=T0))
    first = webhook_store.deliveries("bob", "hook", 2)
    rest = webhook_store.deliveries("bob", "hook", 10, after=(first[-1].event.time, first[-1].event.id))
    assert [d.event.change for d in first + rest] == [f"change-{m}" for m in range(4, -1, -1)]

    assert webhook_store.prune_deliveries("bob", "hook", T0 + timedelta(minutes=2)) == 2
    assert [d.event.change for d in webhook_store.deliveries("bob", "hook", 10)] == [
        "change-4",
        "change-3",
        "change-2",
    ]


def test_deleting_a_subscription_takes_its_log(webhook_store: WebhookStore) -> None:
    made = webhook_store.save_subscription(subscription(), None)
    webhook_store.add_delivery(Delivery("bob", "hook", event(1), created_at=T0))
    webhook_store.delete_subscription(made)
    assert webhook_store.deliveries("bob", "hook", 10) == []


def test_logs_not_pruned_for_a_day_are_found(webhook_store: WebhookStore) -> None:
    webhook_store.save_subscription(subscription("bob", "old", pruned_at=T0), None)
    webhook_store.save_subscription(subscription("bob", "new", pruned_at=T0 + timedelta(days=2)), None)
    assert [s.id for s in webhook_store.stale_logs(T0 + timedelta(days=1))] == ["old"]
    assert sorted(s.id for s in webhook_store.all_subscriptions()) == ["new", "old"]
