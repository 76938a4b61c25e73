"""A model's history: every event of an owner's name and version, newest first.

It has the model's visibility: its owner reads all of it (also after deleting the model, and
across registrations of the same name and version); anyone else reads it only while the model is
visible to them, and only the events that happened while it was public. Events still waiting in
the outbox are shown too, so a change is in the history as soon as it is made.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from registry.domain.events import Event
from registry.domain.model import ModelKey
from registry.identity import Principal
from registry.sealing import SealedUnreadable
from registry.services.dependencies import Dependencies
from registry.services.models import NotVisible, storage_failures
from registry.validation import FieldError, InvalidRequest, validate_identifiers

DEFAULT_PAGE = 100
MAX_PAGE = 1000


@dataclass(frozen=True)
class HistoryPage:
    events: list[Event]  # newest first
    continuation: str | None


def model_history(
    deps: Dependencies,
    caller: Principal,
    key: ModelKey,
    limit: int = DEFAULT_PAGE,
    continuation: str | None = None,
) -> HistoryPage:
    """One page of the model's history as the caller may see it; NotVisible if none."""
    validate_identifiers(name=key.name, version=key.version, owner=key.owner)
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidRequest([FieldError("limit", f"must be between 1 and {MAX_PAGE}")])
    after = _position(deps, caller, key, continuation) if continuation else None
    owner = caller.id == key.owner
    with storage_failures():
        registration = deps.store.get(key.owner, key.name, key.version)
        if not owner and (registration is None or not registration.visible_to(caller.id)):
            raise NotVisible()
        recorded = deps.store.history(key, limit + 1, after)
        pending = [e for e in deps.store.pending_events(key.owner) if _of(e, key)]
    known = {e.id for e in recorded}
    events = sorted([*recorded, *(e for e in pending if e.id not in known)], key=_order)
    if after is not None:
        events = [e for e in events if _order(e) > _order_of(*after)]
    if owner and not events and registration is None and after is None:
        raise NotVisible()  # never registered: nothing to show
    page, more = events[:limit], len(events) > limit
    token = _token(deps, caller, key, page[-1]) if more else None
    # Others see what happened while the model was public (a private past stays private).
    return HistoryPage(page if owner else [e for e in page if e.public], token)


def _of(event: Event, key: ModelKey) -> bool:
    return (event.owner, event.name, event.version) == (key.owner, key.name, key.version)


def _order_of(time: datetime, event_id: str) -> tuple[int, str]:
    """Newest first, then by id: the order the store keeps a history in."""
    return -int(time.timestamp() * 1_000_000), event_id


def _order(event: Event) -> tuple[int, str]:
    return _order_of(event.time, event.id)


def _token(deps: Dependencies, caller: Principal, key: ModelKey, last: Event) -> str:
    return deps.sealer.seal_token({"k": _name(key), "t": last.time.isoformat(), "i": last.id}, caller.id)


def _position(deps: Dependencies, caller: Principal, key: ModelKey, token: str) -> tuple[datetime, str]:
    try:
        data = deps.sealer.open_token(token, caller.id)
        if data["k"] != _name(key):
            raise KeyError("another model's token")
        return datetime.fromisoformat(data["t"]), str(data["i"])
    except (SealedUnreadable, KeyError, TypeError, ValueError):
        raise InvalidRequest(
            [FieldError("continuation", "is not a token this API issued to you for this model")]
        ) from None


def _name(key: ModelKey) -> str:
    return f"{key.owner}/{key.name}/{key.version}"
