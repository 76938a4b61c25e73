"""How webhooks are laid out in Table Storage: keys and entities (pure; the Table adapter and the
in-memory fake both use it).

Subscriptions (table `webhooks`): PartitionKey = owner, RowKey = subscription id. The URL and the
signing secrets are one sealed binary property; everything else is readable.

Listeners' index (same table, PartitionKey "~listeners", which no owner can be: owners start with
a letter or digit): one row per model filter of every enabled subscription with the scope
`visible`, which hears of other owners' public models. RowKey = filter key + "|owner|id":
- `*` for a subscription without a model filter (every model),
- `=` + the name for an exact filter,
- `^` + the first three characters + "|" + the prefix, for a `prefix*` filter.
So the subscriptions that may want an event of model N are three key ranges of one partition:
`*|…`, `=N|…` and `^N[:3]|…` (the last filtered by the whole prefix as it is read). '|' sorts after
every character of a name and '}' right after '|', which bounds each range.

Deliveries (table `webhookdeliveries`): PartitionKey = "owner:subscription id", RowKey = the event's
inverted time and id (newest first; one row per subscription and event, so a repeated fan-out finds
the row it wrote).
"""

from __future__ import annotations

import json
import zlib
from datetime import datetime
from typing import Any

from registry.domain.events import EventType
from registry.domain.model import EPOCH
from registry.domain.webhooks import (
    PREFIX_MIN,
    Delivery,
    DeliveryStatus,
    Scope,
    Subscription,
    event_document,
    event_from_document,
)

LISTENERS = "~listeners"
_END = "}"  # sorts right after "|"


def _time(value: datetime | None) -> datetime:
    return value or EPOCH


def _maybe(value: Any) -> datetime | None:
    return None if value is None or value == EPOCH else value


def _bars(values: tuple[str, ...]) -> str:
    return "|" + "|".join(values) + "|" if values else ""


def _unbar(value: str) -> tuple[str, ...]:
    return tuple(x for x in value.split("|") if x)


# -- subscriptions ------------------------------------------------------------------------------


def subscription_entity(s: Subscription) -> dict[str, Any]:
    return {
        "PartitionKey": s.owner,
        "RowKey": s.id,
        "events": _bars(s.events),
        "models": json.dumps(list(s.models)),
        "scope": s.scope.value,
        "description": s.description,
        "sealed": s.sealed,
        "enabled": s.enabled,
        "disabled_reason": s.disabled_reason,
        "disabled_at": _time(s.disabled_at),
        "failing_since": _time(s.failing_since),
        "created_at": _time(s.created_at),
        "updated_at": _time(s.updated_at),
        "secret_rotated_at": _time(s.secret_rotated_at),
        "previous_secret_until": _time(s.previous_secret_until),
        "pruned_at": _time(s.pruned_at),
    }


def subscription(entity: Any) -> Subscription:
    return Subscription(
        owner=entity["PartitionKey"],
        id=entity["RowKey"],
        events=_unbar(entity.get("events", "")),
        models=tuple(json.loads(entity.get("models") or "[]")),
        scope=Scope(entity.get("scope", Scope.OWN.value)),
        description=entity.get("description", ""),
        sealed=bytes(entity.get("sealed") or b""),
        enabled=bool(entity.get("enabled", True)),
        disabled_reason=entity.get("disabled_reason", ""),
        disabled_at=_maybe(entity.get("disabled_at")),
        failing_since=_maybe(entity.get("failing_since")),
        created_at=_maybe(entity.get("created_at")),
        updated_at=_maybe(entity.get("updated_at")),
        secret_rotated_at=_maybe(entity.get("secret_rotated_at")),
        previous_secret_until=_maybe(entity.get("previous_secret_until")),
        pruned_at=_maybe(entity.get("pruned_at")),
        etag=entity.metadata["etag"] if hasattr(entity, "metadata") else None,
    )


# -- the listeners' index -----------------------------------------------------------------------


def filter_key(pattern: str | None) -> str:
    if pattern is None:
        return "*"
    if pattern.endswith("*"):
        prefix = pattern[:-1]
        return f"^{prefix[:PREFIX_MIN]}|{prefix}"
    return f"={pattern}"


def listener_rows(s: Subscription) -> dict[str, dict[str, Any]]:
    """RowKey -> entity of the index rows the subscription should have (none unless it listens to
    other owners' public events)."""
    if not s.listens_to_others:
        return {}
    rows = {}
    for pattern in s.models or (None,):
        row_key = f"{filter_key(pattern)}|{s.owner}|{s.id}"
        rows[row_key] = {
            "PartitionKey": LISTENERS,
            "RowKey": row_key,
            "owner": s.owner,
            "subscription_id": s.id,
            "events": _bars(s.events),
            "filter": pattern or "",
        }
    return rows


def listener_ranges(model_name: str) -> list[tuple[str, str]]:
    """The RowKey ranges (low inclusive, high exclusive) holding every index row that may take an
    event of this model: no filter, the exact name, and prefixes sharing its first characters."""
    ranges = [("*|", "*" + _END), (f"={model_name}|", f"={model_name}{_END}")]
    if len(model_name) >= PREFIX_MIN:
        bucket = model_name[:PREFIX_MIN]
        ranges.append((f"^{bucket}|", f"^{bucket}{_END}"))
    return ranges


def listener(entity: Any, model_name: str) -> tuple[str, str, tuple[str, ...]] | None:
    """(owner, id, event types) of an index row, if its filter takes the name."""
    pattern = entity.get("filter", "")
    if pattern.endswith("*") and not model_name.startswith(pattern[:-1]):
        return None
    if pattern and not pattern.endswith("*") and pattern != model_name:
        return None
    return entity["owner"], entity["subscription_id"], _unbar(entity.get("events", ""))


# -- deliveries ---------------------------------------------------------------------------------


def deliveries_partition(owner: str, subscription_id: str) -> str:
    return f"{owner}:{subscription_id}"


def delivery_row_key(event_time: datetime, event_id: str) -> str:
    """Newest first; one row per event."""
    inverted = 2**63 - int(event_time.timestamp() * 1_000_000)
    return f"{inverted:019d}-{event_id}"


def delivery_entity(d: Delivery) -> dict[str, Any]:
    return {
        "PartitionKey": deliveries_partition(d.owner, d.subscription_id),
        "RowKey": delivery_row_key(d.event.time, d.event.id),
        "event_id": d.event.id,
        "event_type": d.event.type.value,
        "event_time": d.event.time,
        "status": d.status.value,
        "attempts": d.attempts,
        "created_at": d.created_at,
        "first_attempt_at": _time(d.first_attempt_at),
        "last_attempt_at": _time(d.last_attempt_at),
        "next_attempt_at": _time(d.next_attempt_at),
        "delivered_at": _time(d.delivered_at),
        "response_status": d.response_status if d.response_status is not None else -1,
        "error": d.error,
        "duration_ms": d.duration_ms if d.duration_ms is not None else -1,
        "claimed_until": _time(d.claimed_until),
        "event_z": zlib.compress(json.dumps(event_document(d.event)).encode()),
    }


def delivery(entity: Any) -> Delivery:
    owner, _, subscription_id = entity["PartitionKey"].partition(":")
    event = event_from_document(json.loads(zlib.decompress(bytes(entity["event_z"]))))
    assert event.type is EventType(entity["event_type"])
    status = int(entity.get("response_status", -1))
    duration = int(entity.get("duration_ms", -1))
    return Delivery(
        owner=owner,
        subscription_id=subscription_id,
        event=event,
        created_at=entity["created_at"],
        status=DeliveryStatus(entity["status"]),
        attempts=int(entity.get("attempts", 0)),
        first_attempt_at=_maybe(entity.get("first_attempt_at")),
        last_attempt_at=_maybe(entity.get("last_attempt_at")),
        next_attempt_at=_maybe(entity.get("next_attempt_at")),
        delivered_at=_maybe(entity.get("delivered_at")),
        response_status=status if status >= 0 else None,
        error=entity.get("error", ""),
        duration_ms=duration if duration >= 0 else None,
        claimed_until=_maybe(entity.get("claimed_until")),
        etag=entity.metadata["etag"] if hasattr(entity, "metadata") else None,
    )
