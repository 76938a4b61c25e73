"""Delivering what happened: the outbox, read and emptied by the dispatcher.

Every change records its events with itself (one Table transaction: the store's outbox). The
dispatcher then hands each pending event to every sink (Event Grid, the webhook fan-out) and only
afterwards removes it from the outbox: a process that dies in between delivers it again, with the
same id (at least once). It runs when a worker takes a job, after a registration ends, on a
dispatch job that a change without one of its own sends, and from the sweep.
"""

from __future__ import annotations

import logging

from registry.domain.errors import StorageUnavailable
from registry.domain.jobs import DispatchJob
from registry.services.dependencies import Dependencies

log = logging.getLogger(__name__)


def dispatch_pending(deps: Dependencies, owner: str) -> int:
    """Deliver the owner's pending events to every sink, oldest first; returns how many."""
    pending = deps.store.pending_events(owner)
    if not pending:
        return 0
    deps.store.record_history(pending)  # the model's history is a sink of its own, always there
    for sink in deps.event_sinks:
        sink.publish(pending)  # raises if it cannot: the events stay for the next dispatch
    for event in pending:
        deps.store.delivered(owner, event)
    return len(pending)


def dispatch_quietly(deps: Dependencies, owner: str) -> None:
    """Dispatch on the side of other work, which must not fail for it (the sweep retries)."""
    try:
        dispatch_pending(deps, owner)
    except Exception:
        log.exception("could not dispatch the events of %s; they wait in the outbox", owner)


def dispatch_soon(deps: Dependencies, owner: str) -> None:
    """Ask a worker to dispatch the owner's events (a change that sends no job of its own)."""
    try:
        deps.queue.send(DispatchJob(owner, int(deps.now().timestamp() * 1000)))
    except StorageUnavailable:  # the events wait in the outbox: the sweep dispatches them
        log.warning("could not ask for the dispatch of %s's events; the sweep will", owner)


def dispatch_all(deps: Dependencies) -> int:
    """The sweep's part: every owner with events still waiting (a lost dispatch, a sink down)."""
    delivered = 0
    for owner in deps.store.owners_with_pending_events():
        try:
            delivered += dispatch_pending(deps, owner)
        except Exception:  # one owner's sink trouble must not stop the others
            log.exception("could not dispatch the events of %s", owner)
    return delivered
