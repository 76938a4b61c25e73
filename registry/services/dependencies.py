"""The collaborators every service works with, travelling together as one parameter.

The composition root (registry/bootstrap.py) builds one from the settings with the Azure adapters;
tests build one with fakes. Services see only the ports.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from registry.domain.model import utcnow
from registry.ports import (
    BlobCopier,
    EventSink,
    JobQueue,
    ModelFiles,
    ModelSigner,
    RegistrationStore,
    WebhookClient,
    WebhookStore,
)
from registry.sealing import Sealer
from registry.services.limits import Admission
from registry.settings import Settings


@dataclass(frozen=True)
class Dependencies:
    settings: Settings
    store: RegistrationStore
    queue: JobQueue
    copier: BlobCopier  # the worker's side of the container: server-side block copy
    files: ModelFiles  # the readers' side: registered files, read URLs, removal
    sealer: Sealer
    webhooks: WebhookStore  # webhook subscriptions, the listeners' index, the delivery logs
    webhook_client: WebhookClient  # POSTs one signed event to a subscriber (checked, pinned address)
    admission: Admission = field(default_factory=Admission)
    signer: ModelSigner | None = None  # signs each manifest revision
    event_sinks: tuple[EventSink, ...] = ()  # where events go besides the model's history
    now: Callable[[], datetime] = utcnow  # the wall clock: leases, timestamps
    monotonic: Callable[[], float] = time.monotonic  # the worker's time budget
