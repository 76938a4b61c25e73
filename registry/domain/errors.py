"""What can go wrong, in the registry's own terms (adapters translate SDK errors into these)."""

from __future__ import annotations

from datetime import datetime


class NotFound(Exception):
    pass


class AlreadyExists(Exception):
    pass


class ConcurrentUpdate(Exception):
    """Someone else changed the record since we read it (an ETag condition failed)."""


class StorageUnavailable(Exception):
    """A storage call failed for a reason that may pass: retry later."""


class RecordTooLarge(Exception):
    """A record would exceed what Table Storage holds in one entity or property."""

    def __init__(self, what: str, size: int, limit: int) -> None:
        super().__init__(f"{what} needs {size:,} bytes of Table Storage; the limit is {limit:,}")
        self.size = size
        self.limit = limit


class SourceError(Exception):
    """A source file could not be read. `permanent` errors fail the registration."""

    def __init__(self, reason: str, *, permanent: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent


class IllegalTransition(Exception):
    """A lifecycle step that the registration's current state does not allow."""


class LeaseHeld(Exception):
    """Another worker holds the registration's lease until `until`."""

    def __init__(self, until: datetime) -> None:
        super().__init__(f"the lease is held until {until.isoformat()}")
        self.until = until


class SinkUnavailable(Exception):
    """A sink could not take events now: they stay in the outbox and are handed over again."""
