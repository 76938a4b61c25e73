"""Timer-triggered upkeep: re-enqueue quiet registrations, finish half-done deletes, deliver
waiting events."""

from __future__ import annotations

import logging

import azure.functions as func

from registry.bootstrap import dependencies
from registry.services.sweep import sweep

log = logging.getLogger(__name__)
bp = func.Blueprint()


@bp.timer_trigger(arg_name="timer", schedule="0 */5 * * * *", run_on_startup=False)
def requeue_quiet_registrations(timer: func.TimerRequest) -> None:
    swept = sweep(dependencies())
    if swept.requeued or swept.deleted or swept.dispatched or swept.pruned:
        log.warning(
            "requeued %d quiet registrations; finished %d deletes; delivered %d waiting events; "
            "pruned %d old webhook deliveries",
            swept.requeued,
            swept.deleted,
            swept.dispatched,
            swept.pruned,
        )
