"""Fixtures shared by the unit tests: the in-memory fakes of the ports."""

from __future__ import annotations

import pytest

from registry.sealing import Sealer
from tests.fakes import TEST_SEALING_KEY, FakeJobQueue, FakeRegistrationStore


@pytest.fixture
def store() -> FakeRegistrationStore:
    return FakeRegistrationStore()


@pytest.fixture
def queue() -> FakeJobQueue:
    return FakeJobQueue()


@pytest.fixture
def sealer() -> Sealer:
    return Sealer(TEST_SEALING_KEY)
