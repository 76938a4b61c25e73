"""Queue- and timer-triggered functions: the copy worker, the poison handler, the sweep."""

from __future__ import annotations

import logging

import azure.functions as func

from registry.bootstrap import dependencies
from registry.records import CopyJob
from registry.services.copying import fail_poisoned, process_job
from registry.services.sweep import requeue_stale
from registry.settings import JOBS_QUEUE, STORAGE_CONNECTION

log = logging.getLogger(__name__)
bp = func.Blueprint()


@bp.queue_trigger(arg_name="msg", queue_name=JOBS_QUEUE, connection=STORAGE_CONNECTION)
def copy_worker(msg: func.QueueMessage) -> None:
    try:
        job = CopyJob.from_json(msg.get_body())
    except (ValueError, KeyError) as problem:
        # Retrying cannot fix a malformed message: after the host's retries it is poisoned.
        raise ValueError(f"message {msg.id} is not a copy job: {problem}") from None
    deps = dependencies()
    outcome = process_job(
        job,
        store=deps.store,
        queue=deps.queue,
        copier=deps.copier,
        sealer=deps.sealer,
        policy=deps.copy_policy,
        redelivered=(msg.dequeue_count or 1) > 1,
    )
    log.info("copy job %s (delivery %s): %s", msg.id, msg.dequeue_count, outcome.value)


@bp.queue_trigger(arg_name="msg", queue_name=f"{JOBS_QUEUE}-poison", connection=STORAGE_CONNECTION)
def copy_poisoned(msg: func.QueueMessage) -> None:
    try:
        failed = fail_poisoned(msg.get_body(), store=dependencies().store)
    except (ValueError, KeyError):
        log.error("poison message %s is not a copy job; dropped", msg.id)
        return
    log.warning("poisoned copy job %s: registration %s", msg.id, "failed" if failed else "unchanged")


@bp.timer_trigger(arg_name="timer", schedule="0 */5 * * * *", run_on_startup=False)
def requeue_quiet_registrations(timer: func.TimerRequest) -> None:
    deps = dependencies()
    count = requeue_stale(
        store=deps.store, queue=deps.queue, stale_after_seconds=deps.settings.stale_after_seconds
    )
    if count:
        log.warning("requeued %d quiet registrations", count)
