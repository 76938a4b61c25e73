"""Re-enqueue registrations that made no progress for too long (a lost message, a dead worker)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from registry.ports import JobQueue, RegistrationStore
from registry.records import ConcurrentUpdate, StorageUnavailable, utcnow
from registry.services.registration import job_for

log = logging.getLogger(__name__)


def requeue_stale(
    *,
    store: RegistrationStore,
    queue: JobQueue,
    stale_after_seconds: float,
    now: Callable[[], datetime] = utcnow,
) -> int:
    """Enqueue a job for each quiet InProgress registration; returns how many were enqueued."""
    current = now()
    requeued = 0
    for registration in store.stale_in_progress(current - timedelta(seconds=stale_after_seconds)):
        if registration.lease_id and registration.lease_until > current:
            continue
        # Touching it first (If-Match) makes sure that two sweeps never both requeue it.
        registration.last_progress_at = current
        try:
            store.replace(registration)
        except ConcurrentUpdate:
            continue
        try:
            queue.send(job_for(registration, "requeue", int(current.timestamp())))
        except StorageUnavailable:
            log.warning("could not requeue %s; the next sweep tries again", registration.key)
            continue
        requeued += 1
        log.warning("requeued quiet registration %s", registration.key)
    return requeued
