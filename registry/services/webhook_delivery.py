"""Webhooks, the sending side: the fan-out (an event sink) and one delivery attempt (a job).

Fan-out. For each event the dispatcher hands over, the subscriptions that want it are: its
owner's (one query of the owner's partition, at most REGISTRY_MAX_WEBHOOKS rows, read once per
batch), and, if the model was public when it happened, the other owners' subscriptions with the
scope `visible` whose model filter takes its name (three key-range queries of the listeners'
index: no filter, the exact name, prefixes sharing its first three characters; read once per
model name per batch). Each gets a delivery record, created with a key made of the event, so a
repeated dispatch finds it and sends nothing twice, and a delivery job.

Cost per event: 1 + (3 if public) Table queries per batch, plus per subscription that wants it
one Table insert and one queue message. Per attempt: two point reads (delivery, subscription), two
writes of the delivery (If-Match: the claim, then the outcome), the POST and, while retrying, one
queue message; the subscription is written only when its health changes (it starts or stops
failing, or is disabled).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import random
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from registry.domain.errors import ConcurrentUpdate
from registry.domain.events import Event
from registry.domain.jobs import DeliveryJob, parse_job
from registry.domain.webhooks import (
    Attempt,
    Confidential,
    Delivery,
    DeliveryStatus,
    Subscription,
    signature_headers,
)
from registry.ports import JobQueue, WebhookStore
from registry.sealing import SealedUnreadable
from registry.services.dependencies import Dependencies
from registry.services.webhooks import confidential

log = logging.getLogger(__name__)
_rng = random.Random()
CLAIM = timedelta(seconds=30)  # an attempt is claimed this long: twice what a POST may take


def job_for(delivery: Delivery, *, once: bool = False, sequence: int = 0) -> DeliveryJob:
    return DeliveryJob(
        delivery.owner,
        delivery.subscription_id,
        delivery.event.id,
        delivery.event.time.isoformat(),
        attempt=delivery.attempts,
        once=once,
        sequence=sequence,
    )


class WebhookFanout:
    """The EventSink of webhooks: one delivery (record and job) per subscription that wants an event."""

    def __init__(self, webhooks: WebhookStore, queue: JobQueue, now: Callable[[], datetime]) -> None:
        self.webhooks = webhooks
        self.queue = queue
        self.now = now

    def publish(self, events: Sequence[Event]) -> None:
        own: dict[str, list[Subscription]] = {}
        listeners: dict[str, list[tuple[str, str, tuple[str, ...]]]] = {}
        for event in events:
            for owner, subscription_id in self.targets(event, own, listeners):
                self._deliver(owner, subscription_id, event)

    def targets(
        self,
        event: Event,
        own: dict[str, list[Subscription]],
        listeners: dict[str, list[tuple[str, str, tuple[str, ...]]]],
    ) -> list[tuple[str, str]]:
        """(owner, subscription id) of every subscription that wants the event and may hear of it."""
        if event.owner not in own:
            own[event.owner] = self.webhooks.subscriptions(event.owner)
        found = {(s.owner, s.id): None for s in own[event.owner] if s.enabled and s.wants(event)}
        if event.public:  # others hear only of what they could see when it happened
            if event.name not in listeners:
                listeners[event.name] = self.webhooks.listeners(event.name)
            for owner, subscription_id, types in listeners[event.name]:
                if owner != event.owner and (not types or event.type.short in types):
                    found[(owner, subscription_id)] = None
        return list(found)

    def _deliver(self, owner: str, subscription_id: str, event: Event) -> None:
        now = self.now()
        delivery = Delivery(owner, subscription_id, event, created_at=now)
        if not self.webhooks.add_delivery(delivery):
            # Handed over again: by a dispatch that stopped between the record and its job, or by
            # a concurrent one. The first job is sent again unless an attempt was made; a duplicate
            # job finds the attempt claimed or made, and sends nothing.
            existing = self.webhooks.delivery(owner, subscription_id, event.time, event.id)
            if existing is None or existing.attempts or existing.status is not DeliveryStatus.PENDING:
                return
        self.queue.send(job_for(delivery))


def deliver(deps: Dependencies, job: DeliveryJob, rng: random.Random = _rng) -> str:
    """One attempt of one delivery; returns what became of it. The attempt is claimed first (If-Match),
    so duplicates of a job never POST twice: a job for an attempt already made does nothing, one
    for an attempt claimed by another comes back when the claim ends (its holder may have died)."""
    ready = _ready(deps, job)
    if isinstance(ready, str):
        return ready
    delivery, subscription, secrets = ready
    now = deps.now()
    if delivery.claimed_until is not None and delivery.claimed_until > now:
        later = dataclasses.replace(job, sequence=int(now.timestamp() * 1000))
        deps.queue.send(later, delay_seconds=(delivery.claimed_until - now).total_seconds() + 1)
        return "busy"
    delivery.claimed_until = now + CLAIM
    if _saved(deps, delivery) == "raced":
        return "raced"
    body = json.dumps(delivery.event.cloud_event(deps.settings.base_url), separators=(",", ":"))
    headers = signature_headers(delivery.event.id, body, secrets.signing_secrets(now), now)
    attempt = deps.webhook_client.post(secrets.url, body.encode(), headers)
    delivery.attempted(now, attempt)
    if not attempt.ok:
        due = None if job.once else delivery.retry_at(now, deps.settings.webhook_retry_base_seconds, rng)
        if due is None:
            delivery.give_up()
        else:
            delivery.next_attempt_at = due
            # Sent before the record is written: after a crash in between, that job finds the record
            # an attempt behind it and does nothing, while the queue brings this one back.
            deps.queue.send(job_for(delivery), delay_seconds=max((due - now).total_seconds(), 0))
    outcome = _saved(deps, delivery)
    if outcome != "raced":
        exhausted = outcome == DeliveryStatus.FAILED.value and not job.once
        _note_health(deps, subscription, attempt, now, delivery.first_attempt_at if exhausted else None)
    log.info(
        "webhook %s/%s, event %s, attempt %d: %s",
        job.owner,
        job.subscription_id,
        job.event_id,
        delivery.attempts,
        attempt.describe(),
    )
    return outcome


def _ready(deps: Dependencies, job: DeliveryJob) -> str | tuple[Delivery, Subscription, Confidential]:
    """The delivery, its subscription and secrets, if an attempt is to be made; else what became of it."""
    store = deps.webhooks
    event_time = datetime.fromisoformat(job.event_time)
    delivery = store.delivery(job.owner, job.subscription_id, event_time, job.event_id)
    if delivery is None:
        return "gone"
    if delivery.status is not DeliveryStatus.PENDING or delivery.attempts != job.attempt:
        return "stale"
    subscription = store.subscription(job.owner, job.subscription_id)
    if subscription is None:
        return "gone"
    reason = _not_sent_because(subscription, delivery.event)
    if reason:
        delivery.skip(reason)
        return _saved(deps, delivery)
    try:
        return delivery, subscription, confidential(deps, subscription)
    except SealedUnreadable:
        delivery.give_up("the webhook's secret was sealed with a key that is no longer configured")
        return _saved(deps, delivery)


def _not_sent_because(subscription: Subscription, event: Event) -> str:
    if not subscription.enabled:
        return f"the webhook is disabled: {subscription.disabled_reason}"
    if not subscription.wants(event):
        return "the webhook no longer asks for this event"
    return ""


def _saved(deps: Dependencies, delivery: Delivery) -> str:
    try:
        deps.webhooks.save_delivery(delivery)
    except ConcurrentUpdate:
        return "raced"  # a duplicate of this job recorded the same attempt
    return delivery.status.value


def _note_health(
    deps: Dependencies, subscription: Subscription, attempt: Attempt, now: datetime, given_up: datetime | None
) -> None:
    """A subscription starts failing, stops failing, or, failing for too long, is disabled.
    `given_up`: a delivery that failed its whole retry window began then."""
    for _ in range(3):
        changed = copy.deepcopy(subscription)
        if attempt.ok:
            changes = changed.succeeded()
        else:
            changes = changed.failed(now, attempt.describe(), exhausted_since=given_up)
        if not changes:
            return
        try:
            deps.webhooks.save_subscription(changed, subscription)
        except ConcurrentUpdate:
            fresh = deps.webhooks.subscription(subscription.owner, subscription.id)
            if fresh is None:
                return
            subscription = fresh
            continue
        if not changed.enabled:
            log.warning("webhook %s/%s disabled: %s", changed.owner, changed.id, changed.disabled_reason)
        return


def give_up_poisoned(body: bytes | str, deps: Dependencies, reason: str = "") -> bool:
    """A delivery job that kept failing (the registry's storage or queue, not the receiver) ended in
    the poison or dead-letter queue: its delivery is failed, with why, rather than left pending
    (a redelivery sends it again). False if the message is not a delivery job."""
    try:
        job = parse_job(body)
    except ValueError:
        return False
    if not isinstance(job, DeliveryJob):
        return False
    delivery = deps.webhooks.delivery(
        job.owner, job.subscription_id, datetime.fromisoformat(job.event_time), job.event_id
    )
    if (
        delivery is not None
        and delivery.status is DeliveryStatus.PENDING
        and delivery.attempts == job.attempt
    ):
        delivery.claimed_until = None
        delivery.give_up(
            f"the registry could not attempt it after repeated errors{': ' if reason else ''}{reason}"
        )
        _saved(deps, delivery)
    return True
