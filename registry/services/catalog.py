"""Keeping the public catalog (what lists read) in line with the registration records.

The record is the truth and the catalog a projection, written after it. Two rules keep a model
that went private (or away) from staying listed, whatever the interleaving: whoever makes a
model private or deletes it takes it off the list before and after writing the record; whoever
lists a model re-reads the record after publishing and takes it off again if it is no longer
public.
"""

from __future__ import annotations

import contextlib

from registry.ports import RegistrationStore
from registry.records import NotFound, Registration


def refresh_listing(store: RegistrationStore, registration: Registration) -> None:
    if registration.listed_publicly:
        store.publish(registration)
    current = store.get(registration.owner, registration.name, registration.version)
    if current is None or not current.listed_publicly:
        unlist(store, registration)
    elif current.etag != registration.etag:
        store.publish(current)  # a newer record: list what it says


def unlist(store: RegistrationStore, registration: Registration) -> None:
    with contextlib.suppress(NotFound):
        store.unpublish(registration)
