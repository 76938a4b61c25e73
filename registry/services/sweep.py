"""Upkeep on a timer: re-enqueue registrations that went quiet (a lost message, a dead worker),
finish deletes that stopped half-way, deliver events still waiting in the outbox, and prune the
webhook delivery logs."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from registry.domain.errors import ConcurrentUpdate, StorageUnavailable
from registry.domain.vocabulary import State
from registry.services.deletion import finish_pending_deletions
from registry.services.dependencies import Dependencies
from registry.services.events import dispatch_all
from registry.services.registration import job_for
from registry.services.webhooks import prune_delivery_logs

log = logging.getLogger(__name__)


def requeue_stale(deps: Dependencies) -> int:
    """Enqueue a job for each quiet InProgress registration; returns how many were enqueued."""
    current = deps.now()
    requeued = 0
    quiet_since = current - timedelta(seconds=deps.settings.stale_after_seconds)
    for registration in deps.store.in_state(State.IN_PROGRESS, quiet_since):
        if registration.lease_live(current):
            continue
        # Touching it first (If-Match) makes sure that two sweeps never both requeue it.
        registration.touch(current)
        try:
            deps.store.replace(registration)
        except ConcurrentUpdate:
            continue
        try:
            deps.queue.send(job_for(registration, "requeue", int(current.timestamp())))
        except StorageUnavailable:
            log.warning("could not requeue %s; the next sweep tries again", registration.key)
            continue
        requeued += 1
        log.warning("requeued quiet registration %s", registration.key)
    return requeued


@dataclass(frozen=True)
class Swept:
    requeued: int  # quiet registrations enqueued again
    deleted: int  # deletes finished
    dispatched: int  # events delivered that were still waiting
    pruned: int = 0  # webhook deliveries older than 30 days removed from the logs


def sweep(deps: Dependencies) -> Swept:
    """One round of upkeep."""
    return Swept(
        requeue_stale(deps), finish_pending_deletions(deps), dispatch_all(deps), _pruned_quietly(deps)
    )


def _pruned_quietly(deps: Dependencies) -> int:
    try:
        return prune_delivery_logs(deps)
    except StorageUnavailable:  # the logs are pruned by a later sweep
        log.warning("could not prune the webhook delivery logs; the next sweep tries again")
        return 0
