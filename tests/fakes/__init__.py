"""In-memory fakes of the ports in registry/ports.py (builders of settings and bodies: tests/builders.py).

The fakes behave like the real services where the services' correctness depends on it, and they
reuse the adapters' own pure parts (keys, listing rows, filters, size limits) rather than
re-implementing them; tests/contract runs the same suite against a fake and the real store.
"""

from tests.fakes.blobs import REGISTRY_CONTAINER_URL, FakeBlobCopier, SimulatedCrash, StageCall
from tests.fakes.clock import T0, FakeClock
from tests.fakes.events import RecordingSink
from tests.fakes.queue import FakeJobQueue, SentJob
from tests.fakes.store import FakeRegistrationStore
from tests.fakes.webhooks import FakeWebhookClient, FakeWebhookStore, Post

__all__ = [
    "REGISTRY_CONTAINER_URL",
    "T0",
    "FakeBlobCopier",
    "FakeClock",
    "FakeJobQueue",
    "FakeRegistrationStore",
    "FakeWebhookClient",
    "FakeWebhookStore",
    "Post",
    "RecordingSink",
    "SentJob",
    "SimulatedCrash",
    "StageCall",
]
