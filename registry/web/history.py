"""A model's history and manifests as a person reads them.

The entries are the API's history entries (GET .../history, `views.history_entry`): what
happened, when, by whom, the state and message after it, and for an update each changed
setting's value before and after. Here they become sentences and before -> after pairs; the
templates escape every value.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

TITLES = {
    "registered": "Registered",
    "cloned": "Cloned",
    "finished": "Finished",
    "failed": "Failed",
    "updated": "Updated",
    "files_replaced": "Files replaced",
    "deleted": "Deleted",
}
# What each setting an update may change is called on the page (others keep their own name).
SETTINGS = {"private": "visibility", "description": "description", "model_metainfo": "metadata"}


@dataclass(frozen=True)
class Change:
    """One changed setting: its value before and after, or (metadata) which fields changed."""

    setting: str
    before: str | None = None
    after: str | None = None
    fields: tuple[str, ...] = ()


@dataclass(frozen=True)
class Entry:
    id: str
    kind: str  # the event type's short name (registered, updated, ...)
    title: str
    time: str
    by: str
    state: str
    message: str
    changes: tuple[Change, ...]
    files: tuple[str, ...]  # files_replaced: the new or replaced files
    revision: int | None  # finished: the manifest revision the copy produced
    digest: str | None  # and its digest
    parent: dict[str, str] | None  # cloned: the model it was cloned from


def _shown(setting: str, value: Any) -> str:
    if setting == "private" and isinstance(value, bool):
        return "private" if value else "public"
    if value is None or value == "":
        return "(none)"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str | int | float):
        return str(value)
    return json.dumps(value, sort_keys=True)


def changes_of(changes: Any) -> tuple[Change, ...]:
    """An update's `changes` ({setting: {from, to}}, metadata: [fields]) as Change rows."""
    if not isinstance(changes, dict):
        return ()
    rows: list[Change] = []
    for setting, change in changes.items():
        label = SETTINGS.get(str(setting), str(setting))
        if isinstance(change, dict) and {"from", "to"} <= change.keys():
            rows.append(Change(label, _shown(setting, change["from"]), _shown(setting, change["to"])))
        elif isinstance(change, list):
            rows.append(Change(label, fields=tuple(str(name) for name in change)))
        else:
            rows.append(Change(label, after=_shown(setting, change)))
    return tuple(rows)


def entry(event: dict[str, Any]) -> Entry:
    kind = str(event.get("type", ""))
    revision = event.get("revision")
    parent = event.get("parent")
    return Entry(
        id=str(event.get("id", "")),
        kind=kind,
        title=TITLES.get(kind, kind.replace("_", " ").capitalize()),
        time=str(event.get("time", "")),
        by=str(event.get("by", "")),
        state=str(event.get("state", "")),
        message=str(event.get("message", "")),
        changes=changes_of(event.get("changes")),
        files=tuple(str(f) for f in event.get("files") or ()),
        revision=revision if isinstance(revision, int) else None,
        digest=event.get("manifest_digest") or None,
        parent=parent if isinstance(parent, dict) else None,
    )


def entries(events: list[dict[str, Any]]) -> list[Entry]:
    return [entry(e) for e in events]
