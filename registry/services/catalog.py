"""Keeping the public catalog (what lists read) in line with the registration records.

The record is the truth and the catalog a projection, written after it. Two rules keep a model
that went private (or away) from staying listed, whatever the interleaving:
- whoever makes a model private or deletes it takes it off the list after writing the record;
- whoever lists a model then re-reads the record, and lists again what it now says until what it
  listed is what it read. Its last step is that read, after its last write to the catalog, so a
  change to the record after it is followed by that change's own unlisting or refresh.
"""

from __future__ import annotations

from registry.domain.model import Registration
from registry.ports import RegistrationStore

_ROUNDS = 8


def refresh_listing(store: RegistrationStore, registration: Registration) -> None:
    """List or unlist the model as its record says, until the record holds still."""
    current: Registration | None = registration
    for _ in range(_ROUNDS):
        if current is None or current.registration_id != registration.registration_id:
            store.unpublish(registration)  # deleted (or registered anew: its own refresh lists it)
            return
        if current.listed_publicly:
            store.publish(current)
        else:
            store.unpublish(current)
        fresh = store.get(registration.owner, registration.name, registration.version)
        if fresh is not None and _same_listing(fresh, current):
            return
        current = fresh
    store.unpublish(registration)  # it kept changing: off the list; the next change lists it again


def _same_listing(a: Registration, b: Registration) -> bool:
    return (
        a.registration_id == b.registration_id
        and a.listed_publicly == b.listed_publicly
        and (not a.listed_publicly or _listing_fields(a) == _listing_fields(b))
    )


def _listing_fields(r: Registration) -> tuple[object, ...]:
    return (
        r.owner_name,
        r.description,
        r.state,
        r.updated_at,
        r.model_type,
        r.document.get("model_metainfo"),
        r.parent,
    )


def unlist(store: RegistrationStore, registration: Registration) -> None:
    store.unpublish(registration)
