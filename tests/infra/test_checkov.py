"""checkov on infra/ (Bicep framework) reports no failed check; every skip is in the config, with a reason.

checkov cannot share .venv with the project's pinned tools (it requires packaging<24, pytest 9.2
requires packaging>=24), so it runs from its own virtual environment, .venv/checkov, installed here
from infra/requirements-checkov.txt on first use (and again whenever that file changes).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.infra import INFRA, ROOT, bicep_files, parse

REQUIREMENTS = INFRA / "requirements-checkov.txt"
CONFIG = INFRA / ".checkov.yaml"
VENV = ROOT / ".venv" / "checkov"
PIP_OPTIONS = ["--disable-pip-version-check", "-r", str(REQUIREMENTS)]


def _ensure_checkov() -> Path:
    VENV.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    stamp = VENV / ".requirements.sha256"
    checkov = VENV / "bin" / "checkov"
    with (VENV.parent / ".checkov.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if checkov.exists() and stamp.exists() and stamp.read_text() == digest:
            return checkov
        steps = [
            [sys.executable, "-m", "venv", str(VENV)],
            [str(VENV / "bin" / "python"), "-m", "pip", "install", "--quiet", *PIP_OPTIONS],
        ]
        for step in steps:
            done = subprocess.run(step, capture_output=True, text=True, timeout=900, check=False)
            if done.returncode:
                pytest.fail(f"installing checkov failed: {' '.join(step)}\n{done.stdout}\n{done.stderr}")
        stamp.write_text(digest)
    return checkov


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    checkov = _ensure_checkov()
    done = subprocess.run(
        [str(checkov), "-d", "infra", "--config-file", str(CONFIG), "-o", "json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    try:
        output = json.loads(done.stdout)
    except json.JSONDecodeError:
        pytest.fail(
            f"checkov gave no JSON (exit {done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        )
    reports = output if isinstance(output, list) else [output]
    by_type = {r.get("check_type"): r for r in reports}
    assert set(by_type) == {"bicep"}, f"unexpected checkov reports: {sorted(map(str, by_type))}"
    report: dict[str, Any] = by_type["bicep"]
    return report


def test_checkov_reports_no_failed_checks(report: dict[str, Any]) -> None:
    failed = [
        f"{c['check_id']} {c['check_name']} ({c['file_path']}: {c['resource']})"
        for c in report["results"]["failed_checks"]
    ]
    assert failed == []
    assert report["summary"]["failed"] == 0


def test_checkov_scanned_everything(report: dict[str, Any]) -> None:
    summary = report["summary"]
    assert summary["parsing_errors"] == 0
    declared = sum(
        1
        for path in bicep_files()
        for r in parse(path.relative_to(INFRA).as_posix()).get("resources", {}).values()
        if not r["existing"]
    )
    assert summary["resource_count"] >= declared
    # The checks that matter most for this deployment ran and passed.
    passed = {c["check_id"] for c in report["results"]["passed_checks"]}
    assert {"CKV_AZURE_3", "CKV_AZURE_44", "CKV_AZURE_34", "CKV_AZURE_70", "CKV_AZURE_206"} <= passed
    assert {"CKV_AZURE_110", "CKV_AZURE_42", "CKV_AZURE_145", "CKV_AZURE_114"} <= passed


def test_skips_are_only_in_the_config_each_with_a_reason() -> None:
    for path in bicep_files():
        assert "checkov:skip" not in path.read_text(), (
            f"{path.name}: skip in the config file, with its reason"
        )
    entries, reason = [], False
    in_skips = False
    for line in CONFIG.read_text().splitlines():
        stripped = line.strip()
        if not line.startswith(" ") and stripped:
            in_skips = stripped.startswith("skip-check:")
            continue
        if not in_skips:
            continue
        if stripped.startswith("#"):
            reason = reason or len(stripped.lstrip("# ").split()) >= 3
        elif stripped.startswith("- "):
            check = stripped[2:].split("#")[0].strip()
            assert re.fullmatch(r"CKV2?_AZURE_\d+", check), line
            assert reason, f"{check} is skipped without a reason above it"
            entries.append(check)
        elif not stripped:
            reason = False
    assert entries and len(entries) == len(set(entries))
