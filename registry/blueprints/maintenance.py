"""Timer-triggered upkeep: re-enqueue registrations that went quiet."""

from __future__ import annotations

import logging

import azure.functions as func

from registry.bootstrap import dependencies
from registry.services.sweep import requeue_stale

log = logging.getLogger(__name__)
bp = func.Blueprint()


@bp.timer_trigger(arg_name="timer", schedule="0 */5 * * * *", run_on_startup=False)
def requeue_quiet_registrations(timer: func.TimerRequest) -> None:
    deps = dependencies()
    count = requeue_stale(
        store=deps.store, queue=deps.queue, stale_after_seconds=deps.settings.stale_after_seconds
    )
    if count:
        log.warning("requeued %d quiet registrations", count)
