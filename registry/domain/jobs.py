"""The messages on the job queue: copy a registration's files, register a model (bulk), deliver
an owner's pending events, or POST one event to one webhook."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

JOB_SCHEMA = 1


@dataclass(frozen=True)
class CopyJob:
    """Asks a worker to (continue to) copy a registration's files."""

    owner: str
    name: str
    version: str
    registration_id: str
    # Why it was sent and which of its kind it is: together they make the message id.
    purpose: str = "start"  # start | continue | retry | replay | restart | requeue | update
    sequence: int = 0
    attempt: int = 0  # how often this job was put back after a passing failure (with backoff)

    kind = "copy"

    @property
    def message_id(self) -> str:
        """Deterministic: a resend of the same message is dropped by duplicate detection."""
        base = f"copy:{self.registration_id}:{self.purpose}:{self.sequence}"
        return f"{base}:a{self.attempt}" if self.attempt else base

    def to_json(self) -> str:
        return json.dumps(
            {
                "schema": JOB_SCHEMA,
                "kind": self.kind,
                "owner": self.owner,
                "name": self.name,
                "version": self.version,
                "registration_id": self.registration_id,
                "purpose": self.purpose,
                "sequence": self.sequence,
                "attempt": self.attempt,
            }
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> CopyJob:
        job = parse_job(text)
        if not isinstance(job, CopyJob):
            raise ValueError("not a copy job")
        return job


@dataclass(frozen=True)
class RegisterJob:
    """A registration put straight on the job queue by a bulk producer: the owner and the same
    body as the PUT. The worker validates it exactly as the HTTP function does."""

    owner: str
    name: str
    version: str
    body: Any
    owner_name: str = ""

    kind = "register"

    @property
    def message_id(self) -> str:
        # Hashed: Service Bus takes at most 128 characters, and identifiers may be 128 each.
        what = json.dumps([self.owner, self.name, self.version, self.body], sort_keys=True)
        return f"register:{hashlib.sha256(what.encode()).hexdigest()}"

    def to_json(self) -> str:
        return json.dumps(
            {
                "schema": JOB_SCHEMA,
                "kind": self.kind,
                "owner": self.owner,
                "owner_name": self.owner_name or self.owner,
                "name": self.name,
                "version": self.version,
                "body": self.body,
            }
        )


@dataclass(frozen=True)
class DispatchJob:
    """Asks a worker to deliver an owner's pending events (the outbox)."""

    owner: str
    sequence: int = 0

    kind = "dispatch"

    @property
    def message_id(self) -> str:
        return f"dispatch:{self.owner}:{self.sequence}"

    def to_json(self) -> str:
        return json.dumps(
            {"schema": JOB_SCHEMA, "kind": self.kind, "owner": self.owner, "sequence": self.sequence}
        )


@dataclass(frozen=True)
class DeliveryJob:
    """Asks a worker to POST one event to one webhook subscription (one attempt of it)."""

    owner: str  # the subscription's owner
    subscription_id: str
    event_id: str
    event_time: str  # ISO 8601: with the id, the delivery record's key
    attempt: int = 0  # attempts made before this one: a job for an attempt already made is dropped
    once: bool = False  # a redelivery asked for by the owner: one attempt, no retries
    sequence: int = 0  # tells apart redeliveries asked for the same attempt

    kind = "deliver"

    @property
    def message_id(self) -> str:
        # Hashed: Service Bus takes at most 128 characters, and an owner and an id may be 128 each.
        what = f"{self.owner}/{self.subscription_id}/{self.event_id}"
        base = f"deliver:{hashlib.sha256(what.encode()).hexdigest()[:40]}:{self.attempt}"
        return f"{base}:{self.sequence}" if self.sequence else base

    def to_json(self) -> str:
        return json.dumps(
            {
                "schema": JOB_SCHEMA,
                "kind": self.kind,
                "owner": self.owner,
                "subscription_id": self.subscription_id,
                "event_id": self.event_id,
                "event_time": self.event_time,
                "attempt": self.attempt,
                "once": self.once,
                "sequence": self.sequence,
            }
        )


Job = CopyJob | RegisterJob | DispatchJob | DeliveryJob


def parse_job(text: str | bytes) -> Job:
    """A job message's body; ValueError if it is not one this worker understands."""
    try:
        data = json.loads(text)
    except (UnicodeDecodeError, RecursionError) as problem:
        raise ValueError(f"not a JSON job message: {type(problem).__name__}") from None
    if not isinstance(data, dict) or data.get("schema") != JOB_SCHEMA:
        raise ValueError(f"not a job message of schema {JOB_SCHEMA}")
    try:
        if data.get("kind") == "copy":
            return CopyJob(
                owner=str(data["owner"]),
                name=str(data["name"]),
                version=str(data["version"]),
                registration_id=str(data["registration_id"]),
                purpose=str(data.get("purpose", "start")),
                sequence=int(data.get("sequence", 0)),
                attempt=int(data.get("attempt", 0)),
            )
        if data.get("kind") == "dispatch":
            return DispatchJob(owner=str(data["owner"]), sequence=int(data.get("sequence", 0)))
        if data.get("kind") == "deliver":
            return DeliveryJob(
                owner=str(data["owner"]),
                subscription_id=str(data["subscription_id"]),
                event_id=str(data["event_id"]),
                event_time=str(data["event_time"]),
                attempt=int(data.get("attempt", 0)),
                once=data.get("once") is True,
                sequence=int(data.get("sequence", 0)),
            )
        if data.get("kind") == "register":
            return RegisterJob(
                owner=str(data["owner"]),
                name=str(data["name"]),
                version=str(data["version"]),
                body=data["body"],
                owner_name=str(data.get("owner_name") or data["owner"]),
            )
    except KeyError as missing:
        raise ValueError(f"job message without {missing}") from None
    except (TypeError, ValueError) as problem:
        raise ValueError(f"malformed job message: {type(problem).__name__}") from None
    raise ValueError(f"unknown job kind {str(data.get('kind'))[:40]!r}")
