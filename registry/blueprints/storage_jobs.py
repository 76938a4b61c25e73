"""The job worker on the Storage queue (the local default), and its poison-queue handler."""

from __future__ import annotations

import logging

import azure.functions as func

from registry.bootstrap import dependencies
from registry.services.copying import fail_poisoned
from registry.services.jobs import handle_message
from registry.services.webhook_delivery import give_up_poisoned
from registry.settings import JOBS_QUEUE, STORAGE_CONNECTION

log = logging.getLogger(__name__)
bp = func.Blueprint()


@bp.queue_trigger(arg_name="msg", queue_name=JOBS_QUEUE, connection=STORAGE_CONNECTION)
def copy_worker(msg: func.QueueMessage) -> None:
    # Failures raise: the host retries the message, then moves it to the poison queue.
    outcome = handle_message(msg.get_body(), dependencies(), redelivered=(msg.dequeue_count or 1) > 1)
    log.info("job %s (delivery %s): %s", msg.id, msg.dequeue_count, outcome)


@bp.queue_trigger(arg_name="msg", queue_name=f"{JOBS_QUEUE}-poison", connection=STORAGE_CONNECTION)
def copy_poisoned(msg: func.QueueMessage) -> None:
    if give_up_poisoned(msg.get_body(), dependencies()):
        log.warning("poison message %s: a webhook delivery job; its delivery is recorded failed", msg.id)
        return
    try:
        failed = fail_poisoned(msg.get_body(), dependencies())
    except ValueError:
        log.error("poison message %s is not a copy job; dropped", msg.id)
        return
    log.warning("poisoned copy job %s: registration %s", msg.id, "failed" if failed else "unchanged")
