"""Fixtures of the deployment tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.infra.stub_az import Stubs


@pytest.fixture
def stubs(tmp_path: Path) -> Stubs:
    """Stub commands on a PATH of their own (see tests/infra/stub_az.py)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    return Stubs(bin_dir, tmp_path / "scenario.json", tmp_path / "calls.jsonl")
