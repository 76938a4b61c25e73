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
from azure.data.tables import TableTransactionError

from registry.domain.errors import AlreadyExists, ConcurrentUpdate, NotFound, StorageUnavailable

T = TypeVar("T")


def is_transient_status(status: int | None) -> bool:
    return status is None or status in (408, 429) or status >= 500


def _http_error(error: HttpResponseError, missing_is_conflict: bool) -> Exception:
    # Entity group transactions fail as one error carrying the failed operation's status.
    transaction = isinstance(error, TableTransactionError)
    if error.status_code == 412:
        return ConcurrentUpdate()
    if transaction and error.status_code == 409:
        return AlreadyExists()
    if transaction and error.status_code == 404:
        return ConcurrentUpdate() if missing_is_conflict else NotFound()
    if is_transient_status(error.status_code):
        return StorageUnavailable(f"storage answered {error.status_code}")
    return error


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
        mapped = _http_error(error, missing_is_conflict)
        if mapped is error:
            raise
        raise mapped from (error if isinstance(mapped, StorageUnavailable) else None)
    except AzureError as error:  # connection failures, timeouts
        raise StorageUnavailable(type(error).__name__) from error


def ignore_exists(create: Callable[[], T]) -> T | None:
    try:
        return create()
    except ResourceExistsError:
        return None
