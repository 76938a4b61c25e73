"""The job worker on Azure Service Bus (REGISTRY_JOB_QUEUE=servicebus, the production choice).

Service Bus retries a failing message up to the queue's max delivery count, then dead-letters
it; the last delivery records the failure on the registration first, so it never stays
InProgress.
"""

from __future__ import annotations

import logging

import azure.functions as func

from registry.bootstrap import dependencies
from registry.records import SourceError, StorageUnavailable
from registry.services.jobs import UnusableMessage, fail_after_last_delivery
from registry.settings import SERVICE_BUS_CONNECTION, SERVICE_BUS_QUEUE_SETTING

log = logging.getLogger(__name__)
bp = func.Blueprint()


@bp.service_bus_queue_trigger(
    arg_name="msg", queue_name=f"%{SERVICE_BUS_QUEUE_SETTING}%", connection=SERVICE_BUS_CONNECTION
)
def job_worker(msg: func.ServiceBusMessage) -> None:
    deps = dependencies()
    delivery = msg.delivery_count or 1
    try:
        outcome = deps.handle_job(msg.get_body(), redelivered=delivery > 1)
    except Exception as error:
        if delivery >= deps.settings.service_bus_max_deliveries:
            # Only the registry's own messages are quoted: an SDK's text may echo a source URL.
            own = isinstance(error, SourceError | StorageUnavailable | UnusableMessage)
            reason = f"{type(error).__name__}: {error}" if own else type(error).__name__
            fail_after_last_delivery(msg.get_body(), reason, store=deps.store)
        raise
    log.info("job %s (delivery %s): %s", msg.message_id, delivery, outcome)
