"""Timer-triggered upkeep: re-enqueue registrations that went quiet; finish half-done deletes."""

from __future__ import annotations

import logging

import azure.functions as func

from registry.bootstrap import dependencies
from registry.services.sweep import sweep

log = logging.getLogger(__name__)
bp = func.Blueprint()


@bp.timer_trigger(arg_name="timer", schedule="0 */5 * * * *", run_on_startup=False)
def requeue_quiet_registrations(timer: func.TimerRequest) -> None:
    requeued, deleted = sweep(dependencies())
    if requeued or deleted:
        log.warning("requeued %d quiet registrations; finished %d deletes", requeued, deleted)
