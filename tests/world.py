"""A registry on the in-memory fakes, driven as its users and its worker would drive it.

Unit tests of the services use it where a flow needs files really copied (visibility, updates,
deletes, clones, failures), so that each is shown end to end without storage or HTTP.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from registry.domain.events import Event, EventType
from registry.domain.jobs import CopyJob
from registry.domain.listing import ModelFilter
from registry.domain.model import ModelKey, Registration
from registry.identity import Principal
from registry.sealing import Sealer
from registry.services import events, history
from registry.services import models as service
from registry.services.copying import MIB, CopyPolicy, Outcome, process_job
from registry.services.dependencies import Dependencies
from registry.services.events import dispatch_all
from registry.services.jobs import handle_message
from registry.services.registration import register
from registry.services.webhook_delivery import WebhookFanout
from registry.settings import Settings
from tests.builders import (
    TEST_SEALING_KEY,
    make_deps,
    make_settings,
    registration_body,
    served_bytes,
    source_url,
)
from tests.fakes import (
    REGISTRY_CONTAINER_URL,
    FakeBlobCopier,
    FakeClock,
    FakeJobQueue,
    FakeRegistrationStore,
    FakeWebhookClient,
    FakeWebhookStore,
    RecordingSink,
)

ALICE = Principal("alice-oid-0001", "alice@contoso.com")
BOB = Principal("bob-oid-0002", "bob@contoso.com")
CAROL = Principal("carol-oid-0003", "carol@contoso.com")
BIG = "weights/model.bin"


def payload(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


def default_files(seed: int = 0) -> dict[str, bytes]:
    return {
        "score.py": b"def init():\n    pass\n",
        "env.yml": b"name: env\n",
        "index.md": b"# Codegen\n\nA model that writes code.\n",
        BIG: payload(2 * MIB + MIB // 3, seed=seed),  # three blocks, the last one short
    }


@dataclass
class World:
    store: FakeRegistrationStore = field(default_factory=FakeRegistrationStore)
    queue: FakeJobQueue = field(default_factory=FakeJobQueue)
    copier: FakeBlobCopier = field(default_factory=FakeBlobCopier)
    sealer: Sealer = field(default_factory=lambda: Sealer(TEST_SEALING_KEY))
    settings: Settings = field(default_factory=make_settings)
    now: FakeClock = field(default_factory=FakeClock)
    policy: CopyPolicy = field(
        default_factory=lambda: CopyPolicy(
            block_size=MIB, concurrency=2, time_budget_seconds=100, lease_seconds=60
        )
    )
    # blob path -> the bytes a finished copy must hold there
    expected: dict[str, bytes] = field(default_factory=dict)
    monotonic: Callable[[], float] = time.monotonic  # the worker's budget clock
    sink: RecordingSink = field(default_factory=RecordingSink)  # where events are delivered
    # The last request body registered, and the files registered under each name.
    last_body: dict[str, Any] = field(default_factory=dict)
    files_of: dict[str, dict[str, bytes]] = field(default_factory=dict)
    # Webhooks: the subscriptions and delivery logs, and the subscribers' side of every POST.
    webhooks: FakeWebhookStore = field(default_factory=FakeWebhookStore)
    receiver: FakeWebhookClient = field(default_factory=FakeWebhookClient)

    @property
    def deps(self) -> Dependencies:
        return make_deps(
            self.settings,
            store=self.store,
            queue=self.queue,
            blobs=self.copier,
            now=self.now,
            sealer=self.sealer,
            monotonic=self.monotonic,
            webhooks=self.webhooks,
            webhook_client=self.receiver,
            event_sinks=(self.sink, WebhookFanout(self.webhooks, self.queue, self.now)),
        )

    # -- registering and copying --

    def source(self, caller: Principal, name: str, target: str, data: bytes) -> str:
        url = source_url(f"{caller.id}/{name}/{target}")
        self.copier.put_source(url, data)
        return url

    def register(
        self,
        name: str = "codegen",
        version: str = "1.0",
        *,
        caller: Principal = ALICE,
        private: bool = True,
        files: dict[str, bytes] | None = None,
        finish: bool = True,
    ) -> Registration:
        files = default_files() if files is None else files
        body = registration_body()
        body["model_config"]["private"] = private
        body["model_files"] = {t: self.source(caller, name, t, d) for t, d in files.items()}
        self.last_body, self.files_of[name] = body, files
        registration = register(self.deps, caller, name, version, body)
        self.expected |= {registration.blob_path(t): d for t, d in files.items()}
        if finish:
            assert self.run_queue() == [Outcome.FINISHED]
        return self.record(caller, name, version)

    def process(self, job: CopyJob) -> Outcome:
        return process_job(job, self.deps, policy=self.policy)

    def run_queue(self, limit: int = 50) -> list[Outcome]:
        """Process every job due (and every continuation), as the queue trigger would."""
        outcomes: list[Outcome] = []
        for _ in range(limit):
            jobs = self.queue.take_due()  # a delayed job (a replaced file's removal) waits
            if not jobs:
                return outcomes
            outcomes += [self.process(job) for job in jobs]
        raise AssertionError("the queue never drained")

    def pump(self, limit: int = 200) -> list[str]:
        """Deliver every pending event as the worker would: dispatch the outboxes, then run every
        dispatch and webhook job that is due now (delayed ones, retries, stay queued)."""
        outcomes: list[str] = []
        for _ in range(limit):
            events.dispatch_all(self.deps)
            due = [s for s in self.queue.sent if not isinstance(s.job, CopyJob) and not s.delay_seconds]
            if not due:
                return outcomes
            self.queue.sent = [s for s in self.queue.sent if s not in due]
            outcomes += [handle_message(s.job.to_json(), self.deps, redelivered=False) for s in due]
        raise AssertionError("the jobs never ended")

    def delivered(self) -> list[Event]:
        """Dispatch every pending event (as the sweep does); everything the sink received so far."""
        dispatch_all(self.deps)
        return self.sink.received

    def record(self, caller: Principal, name: str = "codegen", version: str = "1.0") -> Registration:
        found = self.store.peek(caller.id, name, version)
        assert found is not None
        return found

    # -- the service, bound to this world --

    def find(self, caller: Principal, owner: Principal = ALICE, name: str = "codegen") -> Registration:
        return service.find_visible(self.deps, caller, name, "1.0", owner.id)

    def index(self, caller: Principal, owner: Principal = ALICE) -> bytes | None:
        return service.index_page(self.deps, self.find(caller, owner))

    def file_url(self, caller: Principal, path: str, owner: Principal = ALICE) -> str:
        return service.file_url(self.deps, self.find(caller, owner), path, timedelta(minutes=10)).url

    def served(self, registration: Registration, target: str) -> bytes | None:
        """The bytes the registry serves for one of the registration's files."""
        return served_bytes(self.store, self.copier, registration, target)

    def update(self, body: Any, *, caller: Principal = ALICE, name: str = "codegen") -> Registration:
        return service.update_model(self.deps, caller, name, "1.0", body)

    def delete(self, *, caller: Principal = ALICE, name: str = "codegen") -> None:
        service.delete_model(self.deps, caller, name, "1.0")

    def clone(self, body: Any, *, caller: Principal = BOB, version: str = "2.0") -> Registration:
        return service.clone_model(self.deps, caller, "codegen", version, body)

    def history(
        self, caller: Principal = ALICE, *, owner: Principal = ALICE, name: str = "codegen"
    ) -> list[Event]:
        """The model's history as `caller` reads it, newest first (every page)."""
        key = ModelKey(owner.id, name, "1.0")
        events: list[Event] = []
        token = None
        for _ in range(1000):
            page = history.model_history(self.deps, caller, key, 100, token)
            events += page.events
            if page.continuation is None:
                return events
            token = page.continuation
        raise AssertionError("the history never ended")

    def updates(self, caller: Principal = ALICE, name: str = "codegen") -> list[dict[str, Any]]:
        """What each update changed, newest first (the history's `updated` events)."""
        return [e.data["changes"] for e in self.history(caller, name=name) if e.type is EventType.UPDATED]

    def listing(self, caller: Principal, filters: ModelFilter | None = None, limit: int = 100) -> list[str]:
        """Every page, following the tokens: each model as "name/version/owner"."""
        seen: list[str] = []
        token = None
        for _ in range(10_000):
            page = service.list_models(self.deps, caller, filters or ModelFilter(), limit, token)
            seen += [f"{m.name}/{m.version}/{m.owner}" for m in page.models]
            if page.continuation is None:
                return seen
            token = page.continuation
        raise AssertionError("the listing never ended")

    def read_url_data(self, url: str) -> bytes:
        """What a reader gets from a read URL (the copier serves it as a source would be)."""
        info = self.copier.source_info(url)
        path = f"{url.split('?')[0][len(REGISTRY_CONTAINER_URL) + 1 :]}"
        data = self.copier.blob(path)
        assert data is not None
        assert info.size == len(data)
        return data


class Ticking:
    """A budget clock that moves `tick` seconds each time it is read."""

    def __init__(self, tick: float) -> None:
        self.tick, self.t = tick, 1000.0
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            self.t += self.tick
            return self.t
