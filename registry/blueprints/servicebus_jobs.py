"""The job worker on Azure Service Bus (REGISTRY_JOB_QUEUE=servicebus, the production choice).

A copy job that fails for a passing reason comes back later, as a scheduled copy of itself with
growing backoff, until its attempts (REGISTRY_SERVICEBUS_MAX_DELIVERIES) run out. Anything else
raises: Service Bus redelivers it up to the queue's max delivery count, then dead-letters it. The
failure is recorded on the registration first, so it never stays InProgress.
"""

from __future__ import annotations

import dataclasses
import logging

import azure.functions as func

from registry.bootstrap import dependencies
from registry.domain.errors import SourceError, StorageUnavailable
from registry.domain.jobs import CopyJob, parse_job
from registry.services.dependencies import Dependencies
from registry.services.jobs import UnusableMessage, fail_after_last_delivery, handle_message
from registry.settings import SERVICE_BUS_CONNECTION, SERVICE_BUS_QUEUE_SETTING

log = logging.getLogger(__name__)
bp = func.Blueprint()


def backoff_seconds(attempt: int) -> float:
    """10 s, 20 s, 40 s, ... at most 5 minutes."""
    return float(min(300, 10 * 2**attempt))


@bp.service_bus_queue_trigger(
    arg_name="msg", queue_name=f"%{SERVICE_BUS_QUEUE_SETTING}%", connection=SERVICE_BUS_CONNECTION
)
def job_worker(msg: func.ServiceBusMessage) -> None:
    process_message(msg, dependencies())


def process_message(msg: func.ServiceBusMessage, deps: Dependencies) -> None:
    """One delivery: run the job; on a passing failure schedule it again with backoff; on the
    last delivery record the failure before Service Bus dead-letters the message."""
    body = msg.get_body()
    delivery = msg.delivery_count or 1
    limit = deps.settings.service_bus_max_deliveries
    try:
        outcome = handle_message(body, deps, redelivered=delivery > 1)
    except Exception as error:
        passing = isinstance(error, StorageUnavailable) or (
            isinstance(error, SourceError) and not error.permanent
        )
        job = _copy_job(body)
        # Service Bus would redeliver at once: a passing failure comes back later instead, as a
        # scheduled copy of the job, until its attempts run out.
        if passing and job is not None and job.attempt + 1 < limit:
            try:
                retry = dataclasses.replace(job, attempt=job.attempt + 1)
                deps.queue.send(retry, delay_seconds=backoff_seconds(job.attempt))
                log.warning(
                    "job %s failed (%s); retrying in %.0f s",
                    msg.message_id,
                    error,
                    backoff_seconds(job.attempt),
                )
                return
            except StorageUnavailable:
                pass  # cannot schedule it: let Service Bus redeliver
        if delivery >= limit or (passing and job is not None):
            # Only the registry's own messages are quoted: an SDK's text may echo a source URL.
            own = isinstance(error, SourceError | StorageUnavailable | UnusableMessage)
            reason = f"{type(error).__name__}: {error}" if own else type(error).__name__
            fail_after_last_delivery(body, reason, deps)
        raise
    log.info("job %s (delivery %s): %s", msg.message_id, delivery, outcome)


def _copy_job(body: bytes) -> CopyJob | None:
    try:
        job = parse_job(body)
    except ValueError:
        return None
    return job if isinstance(job, CopyJob) else None
