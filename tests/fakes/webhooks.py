"""WebhookStore and WebhookClient in memory.

The store keeps rows as the Table adapter writes them (the keys and the listeners' index rows of
registry/adapters/webhook_codec.py); tests/contract holds it and the adapter to one suite. The
client records every POST and answers what a test scripts.
"""

from __future__ import annotations

import copy
import itertools
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from registry.adapters import webhook_codec as codec
from registry.domain.errors import AlreadyExists, ConcurrentUpdate, StorageUnavailable
from registry.domain.webhooks import Attempt, Delivery, Subscription


class FakeWebhookStore:
    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._etags = itertools.count(1)
        self._subscriptions: dict[tuple[str, str], Subscription] = {}
        self._listeners: dict[str, dict[str, Any]] = {}  # RowKey -> index row
        self._deliveries: dict[str, dict[str, Delivery]] = {}  # partition -> RowKey -> delivery
        self.unavailable: set[str] = set()  # method names whose calls raise StorageUnavailable
        self.calls: list[str] = []

    def _enter(self, method: str) -> None:
        self.calls.append(method)
        if method in self.unavailable:
            raise StorageUnavailable(f"fake storage: {method} is unavailable")

    def _etag(self) -> str:
        return f"W/\"datetime'{next(self._etags)}'\""

    # -- subscriptions --

    def subscription(self, owner: str, subscription_id: str) -> Subscription | None:
        with self._lock:
            self._enter("subscription")
            return copy.deepcopy(self._subscriptions.get((owner, subscription_id)))

    def subscriptions(self, owner: str) -> list[Subscription]:
        with self._lock:
            self._enter("subscriptions")
            return [copy.deepcopy(s) for (o, _), s in sorted(self._subscriptions.items()) if o == owner]

    def all_subscriptions(self) -> Iterator[Subscription]:
        with self._lock:
            self._enter("all_subscriptions")
            found = [copy.deepcopy(s) for _, s in sorted(self._subscriptions.items())]
        yield from found

    def stale_logs(self, pruned_before: datetime) -> Iterator[Subscription]:
        with self._lock:
            self._enter("stale_logs")
            found = [
                copy.deepcopy(s)
                for _, s in sorted(self._subscriptions.items())
                if s.pruned_at is None or s.pruned_at < pruned_before
            ]
        yield from found

    def save_subscription(self, subscription: Subscription, previous: Subscription | None) -> Subscription:
        with self._lock:
            self._enter("save_subscription")
            key = (subscription.owner, subscription.id)
            stored = self._subscriptions.get(key)
            if previous is None and stored is not None:
                raise AlreadyExists()
            if previous is not None and (stored is None or stored.etag != previous.etag):
                raise ConcurrentUpdate()
            for row_key in codec.listener_rows(stored) if stored is not None else {}:
                self._listeners.pop(row_key, None)
            self._listeners.update(codec.listener_rows(subscription))
            subscription.etag = self._etag()
            self._subscriptions[key] = copy.deepcopy(subscription)
            return subscription

    def delete_subscription(self, subscription: Subscription) -> None:
        with self._lock:
            self._enter("delete_subscription")
            stored = self._subscriptions.pop((subscription.owner, subscription.id), None)
            for row_key in codec.listener_rows(stored) if stored is not None else {}:
                self._listeners.pop(row_key, None)
            self._deliveries.pop(codec.deliveries_partition(subscription.owner, subscription.id), None)

    def listeners(self, model_name: str) -> list[tuple[str, str, tuple[str, ...]]]:
        with self._lock:
            self._enter("listeners")
            found = []
            for low, high in codec.listener_ranges(model_name):
                for key in sorted(self._listeners):
                    if low <= key < high:
                        listener = codec.listener(self._listeners[key], model_name)
                        if listener is not None:
                            found.append(listener)
            return found

    # -- deliveries --

    def _log(self, owner: str, subscription_id: str) -> dict[str, Delivery]:
        return self._deliveries.setdefault(codec.deliveries_partition(owner, subscription_id), {})

    def add_delivery(self, delivery: Delivery) -> bool:
        with self._lock:
            self._enter("add_delivery")
            log = self._log(delivery.owner, delivery.subscription_id)
            key = codec.delivery_row_key(delivery.event.time, delivery.event.id)
            if key in log:
                return False
            delivery.etag = self._etag()
            log[key] = copy.deepcopy(delivery)
            return True

    def delivery(
        self, owner: str, subscription_id: str, event_time: datetime, event_id: str
    ) -> Delivery | None:
        with self._lock:
            self._enter("delivery")
            found = self._log(owner, subscription_id).get(codec.delivery_row_key(event_time, event_id))
            return copy.deepcopy(found)

    def find_delivery(self, owner: str, subscription_id: str, event_id: str) -> Delivery | None:
        with self._lock:
            self._enter("find_delivery")
            log = self._log(owner, subscription_id)
            return next((copy.deepcopy(log[k]) for k in sorted(log) if log[k].event.id == event_id), None)

    def save_delivery(self, delivery: Delivery) -> Delivery:
        with self._lock:
            self._enter("save_delivery")
            log = self._log(delivery.owner, delivery.subscription_id)
            key = codec.delivery_row_key(delivery.event.time, delivery.event.id)
            stored = log.get(key)
            if stored is None or delivery.etag is None or stored.etag != delivery.etag:
                raise ConcurrentUpdate()
            delivery.etag = self._etag()
            log[key] = copy.deepcopy(delivery)
            return delivery

    def deliveries(
        self, owner: str, subscription_id: str, limit: int, after: tuple[datetime, str] | None = None
    ) -> list[Delivery]:
        with self._lock:
            self._enter("deliveries")
            log = self._log(owner, subscription_id)
            low = codec.delivery_row_key(*after) if after is not None else ""
            return [copy.deepcopy(log[k]) for k in sorted(log) if k > low][:limit]

    def prune_deliveries(self, owner: str, subscription_id: str, before: datetime) -> int:
        with self._lock:
            self._enter("prune_deliveries")
            log = self._log(owner, subscription_id)
            low = codec.delivery_row_key(before, "~")
            old = [k for k in log if k > low]
            for key in old:
                del log[key]
            return len(old)

    # -- for tests --

    def peek(self, owner: str, subscription_id: str) -> Subscription | None:
        with self._lock:
            return copy.deepcopy(self._subscriptions.get((owner, subscription_id)))

    def all_deliveries(self) -> list[Delivery]:
        with self._lock:
            return [copy.deepcopy(d) for log in self._deliveries.values() for _, d in sorted(log.items())]

    def listener_keys(self) -> list[str]:
        with self._lock:
            return sorted(self._listeners)


@dataclass
class Post:
    url: str
    body: bytes
    headers: dict[str, str]


@dataclass
class FakeWebhookClient:
    """Records every POST; answers 200 unless `answers` (consumed in order) or `answer` says other."""

    posts: list[Post] = field(default_factory=list)
    answers: list[Attempt] = field(default_factory=list)
    answer: Callable[[Post], Attempt] | None = None

    def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> Attempt:
        sent = Post(url, body, dict(headers))
        self.posts.append(sent)
        if self.answers:
            return self.answers.pop(0)
        if self.answer is not None:
            return self.answer(sent)
        return Attempt(200, "", 5)
