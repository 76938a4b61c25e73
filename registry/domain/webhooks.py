"""Webhook subscriptions and their deliveries: who hears of which events, and the retry schedule.

A subscription belongs to an owner. It hears of its owner's models always, and, with the scope
`visible`, of other owners' models while they are public (an event's `public` says whether the
model was public when it happened). Its filters narrow that by event type and model name.

A delivery is one event for one subscription: attempted at once, then retried with exponential
backoff and jitter for up to 24 hours, then given up. A subscription whose deliveries have all
failed for 24 hours is disabled, with the reason, until its owner PUTs it again.

Signatures follow the Standard Webhooks specification: `webhook-id` (the event id, the same on
every attempt), `webhook-timestamp` (seconds), and `webhook-signature` (`v1,<base64 HMAC-SHA256 of
id.timestamp.body>`, one per secret in use: two during a rotation's overlap).
"""

from __future__ import annotations

import base64
import os
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from standardwebhooks import Webhook

from registry.domain.events import Event, EventType

SECRET_PREFIX = "whsec_"  # noqa: S105 - the format's prefix, not a secret
SECRET_BYTES = 32
ROTATION_OVERLAP = timedelta(hours=24)  # the previous secret also signs this long after a rotation
RETRY_WINDOW = timedelta(hours=24)  # a delivery is retried this long after its first attempt
DISABLE_AFTER = timedelta(hours=24)  # a subscription failing this long without a success is disabled
RETRY_FACTOR = 3.0  # each retry waits about three times as long as the one before
RETRY_CAP = timedelta(hours=6)  # and never longer than this
JITTER = 0.2  # each delay is drawn from ±20% around its nominal value
LOG_RETENTION = timedelta(days=30)  # a delivery's record is kept this long after the event
MAX_MODEL_FILTERS = 10
PREFIX_MIN = 3  # characters a `name*` filter holds before its `*` (its index bucket)
EVENT_KINDS = tuple(t.short for t in EventType)


class Scope(StrEnum):
    OWN = "own"  # the owner's models only
    VISIBLE = "visible"  # every model the owner may see: theirs, and others' while public


class DeliveryStatus(StrEnum):
    PENDING = "pending"  # waiting for its next attempt
    DELIVERED = "delivered"  # a 2xx answer
    FAILED = "failed"  # given up: every attempt of 24 hours failed (or a redelivery failed)
    SKIPPED = "skipped"  # not sent: the subscription was disabled or no longer asks for it


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(os.urandom(SECRET_BYTES)).decode()


def name_matches(pattern: str, name: str) -> bool:
    """A model name filter: an exact name, or `prefix*`."""
    if pattern.endswith("*"):
        return name.startswith(pattern[:-1])
    return name == pattern


@dataclass(frozen=True)
class SigningSecret:
    value: str  # whsec_<base64>
    until: datetime | None = None  # a previous secret signs until then; the current one for ever


@dataclass
class Confidential:
    """What a subscription keeps sealed: its URL (which may carry a token of the subscriber's) and
    its signing secrets, the current one first."""

    url: str
    secrets: list[SigningSecret] = field(default_factory=list)

    def signing_secrets(self, now: datetime) -> list[str]:
        return [s.value for s in self.secrets if s.until is None or s.until > now]

    def rotate(self, now: datetime) -> str:
        """A new current secret; the previous one goes on signing for ROTATION_OVERLAP."""
        fresh = new_secret()
        previous = [SigningSecret(self.secrets[0].value, now + ROTATION_OVERLAP)] if self.secrets else []
        self.secrets = [SigningSecret(fresh), *previous]
        return fresh

    def to_json(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "secrets": [
                {"value": s.value, "until": s.until.isoformat() if s.until else None} for s in self.secrets
            ],
        }

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> Confidential:
        secrets = [
            SigningSecret(s["value"], datetime.fromisoformat(s["until"]) if s.get("until") else None)
            for s in value.get("secrets", [])
        ]
        return cls(str(value["url"]), secrets)


@dataclass
class Subscription:
    owner: str
    id: str
    events: tuple[str, ...] = ()  # short event type names; empty: every type
    models: tuple[str, ...] = ()  # model name filters; empty: every model
    scope: Scope = Scope.OWN
    description: str = ""
    sealed: bytes = b""  # the Confidential part, sealed (registry/sealing.py) and bound to this id
    enabled: bool = True
    disabled_reason: str = ""
    disabled_at: datetime | None = None
    failing_since: datetime | None = None  # the first failed attempt since the last success
    created_at: datetime | None = None
    updated_at: datetime | None = None
    secret_rotated_at: datetime | None = None
    previous_secret_until: datetime | None = None  # the previous secret signs until then
    pruned_at: datetime | None = None  # when its delivery log was last pruned
    etag: str | None = None

    @property
    def binding(self) -> str:
        """What its sealed part is bound to: it opens for this subscription only."""
        return f"webhook:{self.owner}:{self.id}"

    @property
    def listens_to_others(self) -> bool:
        """It takes other owners' public events (and so is listed in the listeners' index)."""
        return self.enabled and self.scope is Scope.VISIBLE

    def wants_type(self, event: Event) -> bool:
        return not self.events or event.type.short in self.events

    def wants(self, event: Event) -> bool:
        """Its filters take the event, and its owner may hear of it: their own model always, another
        owner's only if the model was public when it happened."""
        mine = event.owner == self.owner
        if not mine and not (self.scope is Scope.VISIBLE and event.public):
            return False
        return self.wants_type(event) and (
            not self.models or any(name_matches(m, event.name) for m in self.models)
        )

    def succeeded(self) -> bool:
        """A delivery got through; True if that changes the subscription (it was failing)."""
        if self.failing_since is None:
            return False
        self.failing_since = None
        return True

    def failed(self, now: datetime, what: str, exhausted_since: datetime | None = None) -> bool:
        """A delivery attempt failed; True if that changes the subscription. It is disabled when it
        has failed for DISABLE_AFTER without a success, or when a delivery gives up (its whole retry
        window failed: `exhausted_since` is its first attempt) with no success since it began."""
        if not self.enabled:
            return False
        changed = self.failing_since is None
        if self.failing_since is None:
            self.failing_since = now
        failing_throughout = exhausted_since is not None and self.failing_since <= exhausted_since
        if failing_throughout or now - self.failing_since >= DISABLE_AFTER:
            hours = DISABLE_AFTER.total_seconds() / 3600
            self.disable(now, f"every delivery failed for {hours:.0f} hours (the last: {what})")
            return True
        return changed

    def disable(self, now: datetime, reason: str) -> None:
        self.enabled = False
        self.disabled_reason = reason[:500]
        self.disabled_at = now

    def enable(self) -> None:
        self.enabled = True
        self.disabled_reason = ""
        self.disabled_at = None
        self.failing_since = None


@dataclass(frozen=True)
class Attempt:
    """What one POST to a subscriber got."""

    status: int | None  # the HTTP status, or None if there was no answer
    error: str = ""  # why there was no answer, or what was wrong with it (never a secret)
    duration_ms: int = 0

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    def describe(self) -> str:
        return f"HTTP {self.status}" if self.status is not None else self.error or "no answer"


@dataclass
class Delivery:
    owner: str  # the subscription's owner
    subscription_id: str
    event: Event
    created_at: datetime
    status: DeliveryStatus = DeliveryStatus.PENDING
    attempts: int = 0
    first_attempt_at: datetime | None = None
    last_attempt_at: datetime | None = None
    next_attempt_at: datetime | None = None
    delivered_at: datetime | None = None
    response_status: int | None = None
    error: str = ""
    duration_ms: int | None = None
    claimed_until: datetime | None = None  # an attempt is being made until then (by one job alone)
    etag: str | None = None

    @property
    def event_id(self) -> str:
        return self.event.id

    def attempted(self, now: datetime, attempt: Attempt) -> None:
        self.attempts += 1
        self.first_attempt_at = self.first_attempt_at or now
        self.last_attempt_at = now
        self.response_status = attempt.status
        self.error = attempt.error[:300]
        self.duration_ms = attempt.duration_ms
        self.next_attempt_at = None
        self.claimed_until = None
        if attempt.ok:
            self.status = DeliveryStatus.DELIVERED
            self.delivered_at = now

    def retry_at(self, now: datetime, base_seconds: float, rng: random.Random) -> datetime | None:
        """When to try again after a failed attempt, or None: the retry window is over."""
        assert self.first_attempt_at is not None
        due = now + timedelta(seconds=retry_delay(self.attempts, base_seconds, rng))
        return due if due <= self.first_attempt_at + RETRY_WINDOW else None

    def give_up(self, reason: str = "") -> None:
        self.status = DeliveryStatus.FAILED
        self.next_attempt_at = None
        if reason:
            self.error = reason[:300]

    def skip(self, reason: str) -> None:
        self.status = DeliveryStatus.SKIPPED
        self.next_attempt_at = None
        self.error = reason[:300]


def retry_delay(attempts: int, base_seconds: float, rng: random.Random) -> float:
    """Seconds to wait after the `attempts`-th failed attempt: base * 3^(attempts-1), at most 6 h,
    drawn from ±20% around that. Each delay is at least 2.4 times the one before until the cap
    (jitter cannot make the schedule shrink), so with a base of 30 s about ten attempts (nine to
    eleven) fit in 24 hours."""
    nominal = min(base_seconds * RETRY_FACTOR ** max(attempts - 1, 0), RETRY_CAP.total_seconds())
    return nominal * rng.uniform(1 - JITTER, 1 + JITTER)


def signature_headers(event_id: str, body: str, secrets: list[str], now: datetime) -> dict[str, str]:
    """The Standard Webhooks headers for this body: one `v1,` signature per secret in use."""
    signatures = [Webhook(secret).sign(event_id, now, body) for secret in secrets]
    return {
        "webhook-id": event_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": " ".join(signatures),
    }


def event_document(event: Event) -> dict[str, Any]:
    """The event as a delivery record keeps it (what the CloudEvent is rebuilt from)."""
    return {
        "type": event.type.value,
        "owner": event.owner,
        "name": event.name,
        "version": event.version,
        "time": event.time.isoformat(),
        "change": event.change,
        "public": event.public,
        "data": event.data,
    }


def event_from_document(document: dict[str, Any]) -> Event:
    return Event(
        type=EventType(document["type"]),
        owner=document["owner"],
        name=document["name"],
        version=document["version"],
        time=datetime.fromisoformat(document["time"]),
        change=document["change"],
        public=bool(document["public"]),
        data=document.get("data", {}),
    )
