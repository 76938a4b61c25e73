"""Webhook subscriptions, as their owners manage them: create or replace, read, list, delete,
rotate the signing secret, read the delivery log and ask for a redelivery.

A subscription belongs to its caller (an owner) and is found only by them: anyone else gets 404.
Its signing secret is shown once, when it is made (and when it is rotated); at rest it is sealed
with the URL, bound to the subscription, and never logged.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from registry.domain.errors import AlreadyExists, ConcurrentUpdate, StorageUnavailable
from registry.domain.jobs import DeliveryJob
from registry.domain.webhooks import (
    LOG_RETENTION,
    Confidential,
    Delivery,
    DeliveryStatus,
    Scope,
    SigningSecret,
    Subscription,
    new_secret,
)
from registry.identity import Principal
from registry.sealing import SealedUnreadable
from registry.services.dependencies import Dependencies
from registry.services.models import storage_failures
from registry.services.registration import Conflict, Unavailable
from registry.validation import (
    FieldError,
    InvalidRequest,
    WebhookRequest,
    parse_webhook_request,
    validate_identifiers,
)

log = logging.getLogger(__name__)

DEFAULT_PAGE = 20
MAX_PAGE = 100
EVENT_ID_LENGTH = 32


class Missing(Exception):
    """No such thing for this caller (404); `what` names it."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


@dataclass(frozen=True)
class Webhook:
    """A subscription as its owner reads it (the URL opened; never a secret)."""

    subscription: Subscription
    url: str


@dataclass(frozen=True)
class Saved:
    webhook: Webhook
    created: bool
    secret: str | None  # on creation only: the one time it is shown


@dataclass(frozen=True)
class DeliveryPage:
    deliveries: list[Delivery]
    continuation: str | None


def confidential(deps: Dependencies, subscription: Subscription) -> Confidential:
    return Confidential.from_json(deps.sealer.unseal(subscription.sealed, subscription.binding))


def _seal(deps: Dependencies, subscription: Subscription, secrets: Confidential) -> None:
    subscription.sealed = deps.sealer.seal(secrets.to_json(), subscription.binding)


def _readable(deps: Dependencies, subscription: Subscription) -> Webhook:
    try:
        url = confidential(deps, subscription).url
    except SealedUnreadable:  # a retired sealing key: the owner can still see and replace it
        url = ""
    return Webhook(subscription, url)


def _own(deps: Dependencies, caller: Principal, webhook_id: str) -> Subscription:
    validate_identifiers(id=webhook_id)
    with storage_failures():
        found = deps.webhooks.subscription(caller.id, webhook_id)
    if found is None:
        raise Missing("the webhook")
    return found


def save(deps: Dependencies, caller: Principal, webhook_id: str, body: Any) -> Saved:
    """PUT: create the subscription (its secret made and shown once) or replace its settings (the
    secret kept; a disabled subscription is enabled again)."""
    validate_identifiers(id=webhook_id)
    request = parse_webhook_request(body, dev_mode=deps.settings.dev_mode)
    with storage_failures():
        for _ in range(3):
            now = deps.now()
            previous = deps.webhooks.subscription(caller.id, webhook_id)
            if previous is None:
                if len(deps.webhooks.subscriptions(caller.id)) >= deps.settings.max_webhooks:
                    raise Conflict(
                        f"an owner has at most {deps.settings.max_webhooks} webhooks: delete one first"
                    )
                secret = new_secret()
                made = Subscription(
                    caller.id, webhook_id, created_at=now, pruned_at=now, secret_rotated_at=now
                )
                _apply(made, request, now)
                _seal(deps, made, Confidential(request.url, [SigningSecret(secret)]))
                try:
                    deps.webhooks.save_subscription(made, None)
                except AlreadyExists:
                    continue
                log.info("webhook %s of %s created", webhook_id, caller.id)
                return Saved(Webhook(made, request.url), True, secret)
            replaced = copy.deepcopy(previous)
            _apply(replaced, request, now)
            replaced.enable()
            secrets = _open_or_conflict(deps, previous)
            secrets.url = request.url
            _seal(deps, replaced, secrets)
            try:
                deps.webhooks.save_subscription(replaced, previous)
            except ConcurrentUpdate:
                continue
            return Saved(Webhook(replaced, request.url), False, None)
    raise Conflict("the webhook kept changing while it was being saved; retry")


def _apply(subscription: Subscription, request: WebhookRequest, now: datetime) -> None:
    subscription.events = tuple(dict.fromkeys(request.events or ()))
    subscription.models = tuple(dict.fromkeys(request.models or ()))
    subscription.scope = Scope(request.scope)
    subscription.description = request.description
    subscription.updated_at = now


def _open_or_conflict(deps: Dependencies, subscription: Subscription) -> Confidential:
    try:
        return confidential(deps, subscription)
    except SealedUnreadable:
        raise Conflict(
            "the webhook's secret was sealed with a key that is no longer configured: delete the "
            "webhook and create it again"
        ) from None


def get(deps: Dependencies, caller: Principal, webhook_id: str) -> Webhook:
    return _readable(deps, _own(deps, caller, webhook_id))


def list_own(deps: Dependencies, caller: Principal) -> list[Webhook]:
    with storage_failures():
        found = deps.webhooks.subscriptions(caller.id)
    return [_readable(deps, s) for s in sorted(found, key=lambda s: s.id)]


def delete(deps: Dependencies, caller: Principal, webhook_id: str) -> None:
    """The subscription, its index rows and its delivery log; deliveries in flight are dropped."""
    subscription = _own(deps, caller, webhook_id)
    with storage_failures():
        deps.webhooks.delete_subscription(subscription)
    log.info("webhook %s of %s deleted", webhook_id, caller.id)


def rotate_secret(deps: Dependencies, caller: Principal, webhook_id: str) -> tuple[Webhook, str]:
    """A new signing secret, shown once; the previous one goes on signing for a day beside it."""
    with storage_failures():
        for _ in range(3):
            previous = _own(deps, caller, webhook_id)
            rotated = copy.deepcopy(previous)
            secrets = _open_or_conflict(deps, previous)
            now = deps.now()
            fresh = secrets.rotate(now)
            rotated.secret_rotated_at = rotated.updated_at = now
            rotated.previous_secret_until = secrets.secrets[1].until if len(secrets.secrets) > 1 else None
            _seal(deps, rotated, secrets)
            try:
                deps.webhooks.save_subscription(rotated, previous)
            except ConcurrentUpdate:
                continue
            log.info("webhook %s of %s: signing secret rotated", webhook_id, caller.id)
            return Webhook(rotated, secrets.url), fresh
    raise Conflict("the webhook kept changing while its secret was being rotated; retry")


def deliveries(
    deps: Dependencies, caller: Principal, webhook_id: str, limit: int, continuation: str | None
) -> DeliveryPage:
    """One page of the delivery log, newest event first."""
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidRequest([FieldError("limit", f"must be between 1 and {MAX_PAGE}")])
    subscription = _own(deps, caller, webhook_id)
    after = _position(deps, caller, webhook_id, continuation) if continuation else None
    with storage_failures():
        found = deps.webhooks.deliveries(subscription.owner, subscription.id, limit + 1, after)
    page = found[:limit]
    token = None
    if len(found) > limit:
        last = page[-1].event
        token = deps.sealer.seal_token({"w": webhook_id, "t": last.time.isoformat(), "i": last.id}, caller.id)
    return DeliveryPage(page, token)


def _position(deps: Dependencies, caller: Principal, webhook_id: str, token: str) -> tuple[datetime, str]:
    try:
        data = deps.sealer.open_token(token, caller.id)
        if data["w"] != webhook_id:
            raise KeyError("another webhook's token")
        return datetime.fromisoformat(data["t"]), str(data["i"])
    except (SealedUnreadable, KeyError, TypeError, ValueError):
        raise InvalidRequest(
            [FieldError("continuation", "is not a token this API issued to you for this webhook")]
        ) from None


def redeliver(deps: Dependencies, caller: Principal, webhook_id: str, event_id: str) -> Delivery:
    """Send the event again now: a delivery still being retried gets its next attempt at once; a
    finished one gets one more attempt (no retries after it)."""
    subscription = _own(deps, caller, webhook_id)
    if len(event_id) != EVENT_ID_LENGTH or not all(c in "0123456789abcdef" for c in event_id):
        raise InvalidRequest([FieldError("event_id", f"must be an event id ({EVENT_ID_LENGTH} hex digits)")])
    if not subscription.enabled:
        raise Conflict(f"the webhook is disabled ({subscription.disabled_reason}): PUT it to enable it again")
    with storage_failures():
        delivery = deps.webhooks.find_delivery(subscription.owner, subscription.id, event_id)
        if delivery is None:
            raise Missing("that delivery")
        once = delivery.status is not DeliveryStatus.PENDING
        if once:
            delivery.status = DeliveryStatus.PENDING
            delivery.next_attempt_at = deps.now()
            try:
                deps.webhooks.save_delivery(delivery)
            except ConcurrentUpdate:
                raise Conflict("the delivery is being attempted right now; retry") from None
        job = DeliveryJob(
            subscription.owner,
            subscription.id,
            event_id,
            delivery.event.time.isoformat(),
            attempt=delivery.attempts,
            once=once,
            sequence=int(deps.now().timestamp() * 1000),
        )
        try:
            deps.queue.send(job)
        except StorageUnavailable as error:
            raise Unavailable("the job queue is unavailable; retry later") from error
    return delivery


def prune_delivery_logs(deps: Dependencies) -> int:
    """The sweep's part: each subscription's log loses the deliveries of events older than 30 days,
    once a day (a subscription stamps when it was last pruned)."""
    now = deps.now()
    removed = 0
    for subscription in deps.webhooks.stale_logs(now - timedelta(days=1)):
        removed += deps.webhooks.prune_deliveries(subscription.owner, subscription.id, now - LOG_RETENTION)
        stamped = copy.deepcopy(subscription)
        stamped.pruned_at = now
        try:
            deps.webhooks.save_subscription(stamped, subscription)
        except ConcurrentUpdate:
            continue  # changed meanwhile: it is pruned again next time, which removes nothing
    return removed
