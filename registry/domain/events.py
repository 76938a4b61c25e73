"""What happened to a model, as CloudEvents 1.0.

An event is recorded with the change it tells of (in the same Table transaction: see the store's
outbox), then delivered at least once to every sink. Its id is derived from the change, so a
repeated delivery, or the same change recorded again after a crash, carries the same id.
Event data never holds a source URL, a SAS or a password.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

SPEC_VERSION = "1.0"
_TYPE_PREFIX = "registry.model."


class EventType(StrEnum):
    REGISTERED = _TYPE_PREFIX + "registered"  # a registration was accepted
    CLONED = _TYPE_PREFIX + "cloned"  # a clone was accepted
    FINISHED = _TYPE_PREFIX + "finished"  # every file copied and verified (a manifest revision)
    FAILED = _TYPE_PREFIX + "failed"
    UPDATED = _TYPE_PREFIX + "updated"  # metadata or visibility changed
    FILES_REPLACED = _TYPE_PREFIX + "files_replaced"  # new or replacing files accepted
    DELETED = _TYPE_PREFIX + "deleted"

    @property
    def short(self) -> str:
        """The name without the prefix (what subscriptions and history show)."""
        return self.value.removeprefix(_TYPE_PREFIX)


@dataclass(frozen=True)
class Event:
    """One change of one model, and who may hear of it (its visibility when it happened)."""

    type: EventType
    owner: str
    name: str
    version: str
    time: datetime
    change: str  # what tells this change from any other of the same kind (makes the id)
    public: bool  # the model was public (and listed) when it happened: others may hear of it
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        material = f"{self.owner}/{self.name}/{self.version}|{self.type.value}|{self.change}"
        return hashlib.sha256(material.encode()).hexdigest()[:32]

    @property
    def subject(self) -> str:
        return f"models/{self.owner}/{self.name}/{self.version}"

    def cloud_event(self, source: str) -> dict[str, Any]:
        """The event in the CloudEvents 1.0 JSON format."""
        return {
            "specversion": SPEC_VERSION,
            "id": self.id,
            "source": source,
            "type": self.type.value,
            "subject": self.subject,
            "time": self.time.isoformat(),
            "datacontenttype": "application/json",
            "data": {"owner": self.owner, "name": self.name, "version": self.version, **self.data},
        }
