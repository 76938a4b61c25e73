"""Fixtures shared by the unit tests: the in-memory fakes of the ports, wired into Dependencies."""

from __future__ import annotations

import pytest

from registry.sealing import Sealer
from registry.services.dependencies import Dependencies
from registry.settings import Settings
from tests.builders import TEST_SEALING_KEY, make_deps, make_settings
from tests.fakes import FakeBlobCopier, FakeClock, FakeJobQueue, FakeRegistrationStore


@pytest.fixture
def store() -> FakeRegistrationStore:
    return FakeRegistrationStore()


@pytest.fixture
def queue() -> FakeJobQueue:
    return FakeJobQueue()


@pytest.fixture
def blobs() -> FakeBlobCopier:
    return FakeBlobCopier()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sealer() -> Sealer:
    return Sealer(TEST_SEALING_KEY)


@pytest.fixture
def settings() -> Settings:
    return make_settings()


@pytest.fixture
def deps(
    settings: Settings,
    store: FakeRegistrationStore,
    queue: FakeJobQueue,
    blobs: FakeBlobCopier,
    clock: FakeClock,
    sealer: Sealer,
) -> Dependencies:
    return make_deps(settings, store=store, queue=queue, blobs=blobs, now=clock, sealer=sealer)
