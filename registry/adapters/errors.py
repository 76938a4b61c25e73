"""Translate Azure SDK exceptions into the registry's own errors."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from azure.core.exceptions import (
    AzureError,
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)

from registry.records import AlreadyExists, ConcurrentUpdate, NotFound, StorageUnavailable

T = TypeVar("T")


def is_transient_status(status: int | None) -> bool:
    return status is None or status in (408, 429) or status >= 500


@contextmanager
def storage_errors(*, missing_is_conflict: bool = False) -> Iterator[None]:
    """Map SDK errors: exists → AlreadyExists, 412 → ConcurrentUpdate, passing faults → retry."""
    try:
        yield
    except ResourceExistsError:
        raise AlreadyExists() from None
    except ResourceModifiedError:
        raise ConcurrentUpdate() from None
    except ResourceNotFoundError:
        if missing_is_conflict:
            raise ConcurrentUpdate() from None
        raise NotFound() from None
    except HttpResponseError as error:
        if error.status_code == 412:
            raise ConcurrentUpdate() from None
        if is_transient_status(error.status_code):
            raise StorageUnavailable(f"storage answered {error.status_code}") from error
        raise
    except AzureError as error:  # connection failures, timeouts
        raise StorageUnavailable(type(error).__name__) from error


def ignore_exists(create: Callable[[], T]) -> T | None:
    try:
        return create()
    except ResourceExistsError:
        return None
