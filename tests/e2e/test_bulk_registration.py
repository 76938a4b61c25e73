"""End to end: `python -m registry bulk` feeding the local Functions host through the job queue."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from azure.storage.blob import ContainerClient
from azure.storage.queue import QueueClient

from registry.bootstrap import build
from registry.services.dependencies import Dependencies
from registry.settings import JOBS_QUEUE, load_settings
from tests.conftest import Sources
from tests.e2e.conftest import REPO, LocalHost
from tests.e2e.helpers import fetch

pytestmark = pytest.mark.e2e

OWNERS = ("alice", "bulkbot")
LINES = 200
SMALL_FILES = {"score.py": b"def init(d): pass\n", "env.yml": b"name: e\n", "index.md": b"# m\n"}
# A handful of small weights, shared by all registrations (each under its own name and version).
WEIGHTS = [os.urandom(2048 + 997 * i) for i in range(5)]


@pytest.fixture(scope="module")
def bulk_env(host_env: dict[str, str]) -> dict[str, str]:
    # host_env's 0.3 s copy budget (for the crash test) makes each copy of these tiny files continue
    # about twice: ~360 more queue messages and ~40 s more on the emulator. Continuations have
    # their own tests, so this host's copies get time to finish in one go.
    return host_env | {
        "REGISTRY_BULK_OWNERS": ",".join(OWNERS),
        "REGISTRY_COPY_TIME_BUDGET_SECONDS": "10",
        "REGISTRY_COPY_LEASE_SECONDS": "30",
    }


@pytest.fixture(scope="module")
def bulk_host(bulk_env: dict[str, str]) -> Iterator[LocalHost]:
    with LocalHost(bulk_env) as host:
        yield host


@pytest.fixture(scope="module")
def deps(bulk_env: dict[str, str]) -> Dependencies:
    """The registry's own adapters, on the same tables and container as the host."""
    return build(load_settings(bulk_env))


@dataclass(frozen=True)
class Good:
    owner: str
    name: str
    version: str
    weights: bytes

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.owner, self.name, self.version)


def _body(urls: dict[str, str], weights_url: str) -> dict[str, Any]:
    return {
        "model_config": {
            "type": "SEQ2SEQ",
            "description": "bulk-registered",
            "inference_properties": {"entry_script": "score.py", "conda_env": "env.yml"},
        },
        "model_files": {**urls, "weights.bin": weights_url},
        "model_metainfo": {
            "input_types": ["SOURCE_CODE"],
            "input_languages": ["python"],
            "input_description": "code",
            "output_types": ["NATURAL_LANGUAGE"],
            "output_languages": ["en"],
            "output_description": "summary",
            "num_params": 1000,
            "index_page_file": "index.md",
        },
    }


def _manifest(sources: Sources, path: Path) -> tuple[list[Good], dict[int, str]]:
    """LINES lines: good registrations, and bad lines of different kinds at known numbers.

    Returns the good registrations in order and, for each bad line's number, a word its reason holds.
    """
    urls = {name: sources.upload(name, data) for name, data in SMALL_FILES.items()}
    weight_urls = [sources.upload(f"weights-{i}.bin", data) for i, data in enumerate(WEIGHTS)]

    def entry(owner: str, name: str, version: str, body: Any) -> str:
        return json.dumps({"owner": owner, "name": name, "version": version, "body": body})

    def good_body(i: int) -> dict[str, Any]:
        return _body(urls, weight_urls[i % len(WEIGHTS)])

    wrong_type = good_body(0)
    wrong_type["model_config"]["type"] = "TRANSFORMER"
    foreign_host = good_body(0)
    foreign_host["model_files"]["extra.bin"] = "https://evil.example.com/extra.bin"
    no_files = good_body(0)
    del no_files["model_files"]
    bad: dict[int, tuple[str, str]] = {  # entry position (0-based, blank lines aside) -> line, word
        6: ('{"owner": "alice", "name": "cut-off", ', "not JSON"),
        22: ("[1, 2, 3]", "JSON object"),
        40: (json.dumps({"owner": "alice", "name": "bodiless", "version": "1"}), "missing body"),
        59: (entry("alice", "-dash", "1", good_body(0)), "name '-dash' is not a valid identifier"),
        87: (entry("alice", "reserved", "status", good_body(0)), "version 'status'"),
        100: (entry("mallory", "theirs", "1", good_body(0)), "'mallory' is not allowed"),
        129: (entry("alice", "typed", "1", wrong_type), "model_config.type"),
        149: (entry("alice", "foreign", "1", foreign_host), "evil.example.com"),
        176: (entry("alice", "bulk000", "1.0", good_body(0)), "earlier line"),  # the first good line
        198: (entry("bulkbot", "fileless", "1", no_files), "model_files"),
    }
    lines: list[str] = []
    goods: list[Good] = []
    bad_numbers: dict[int, str] = {}
    for position in range(LINES):
        if position in bad:
            text, word = bad[position]
            lines.append(text)
            bad_numbers[len(lines)] = word
        else:
            i = len(goods)
            good = Good(OWNERS[i % 2], f"bulk{i:03d}", f"1.{i % 3}", WEIGHTS[i % len(WEIGHTS)])
            lines.append(entry(good.owner, good.name, good.version, good_body(i)))
            goods.append(good)
        if position % 50 == 49:
            lines.append("")  # blank lines are skipped, but counted in the line numbers
    path.write_text("\n".join(lines) + "\n")
    return goods, bad_numbers


def _run_cli(manifest: Path, env: dict[str, str]) -> tuple[subprocess.CompletedProcess[str], float]:
    command = [sys.executable, "-m", "registry", "bulk", str(manifest), "--wait", "--no-progress"]
    command += ["--settings", "/nonexistent", "--timeout", "240"]
    started = time.monotonic()
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    return result, time.monotonic() - started


def _reported_lines(stderr: str, manifest: Path) -> dict[int, str]:
    pattern = re.compile(rf"^{re.escape(str(manifest))}:(\d+): (.*)$")
    return {int(m[1]): m[2] for m in map(pattern.match, stderr.splitlines()) if m}


def _wait_until_the_queue_drains(env: dict[str, str], timeout: float = 120) -> None:
    """Until the jobs queue holds no message, visible or in flight (a message is deleted only
    once its function returned)."""
    queue = QueueClient.from_connection_string(env["AzureWebJobsStorage"], JOBS_QUEUE)
    deadline = time.monotonic() + timeout
    empty_polls = 0
    while time.monotonic() < deadline:
        empty_polls = empty_polls + 1 if queue.get_queue_properties().approximate_message_count == 0 else 0
        if empty_polls == 3:
            return
        time.sleep(0.5)
    raise AssertionError(f"the jobs queue did not drain within {timeout}s")


def _snapshot(deps: Dependencies, models: ContainerClient, goods: list[Good]) -> dict[str, Any]:
    records = {}
    for good in goods:
        registration = deps.store.get(*good.key)
        assert registration is not None, good
        records[good.key] = (registration.registration_id, registration.updated_at, registration.state.value)
    blobs = {b.name: (b.etag, b.last_modified, b.size) for b in models.list_blobs()}
    return {"records": records, "blobs": blobs}


def test_a_bulk_manifest_registers_every_good_line_once_and_reports_every_bad_one(
    bulk_host: LocalHost,
    bulk_env: dict[str, str],
    deps: Dependencies,
    sources: Sources,
    models: ContainerClient,
    tmp_path: Path,
) -> None:
    manifest = tmp_path / "manifest.jsonl"
    goods, bad = _manifest(sources, manifest)
    assert len(goods) + len(bad) == LINES and len(bad) == 10

    first, first_seconds = _run_cli(manifest, bulk_env)

    assert first.returncode == 1, first.stderr[-3000:]
    reported = _reported_lines(first.stderr, manifest)
    assert sorted(reported) == sorted(bad), first.stderr[-3000:]
    for number, word in bad.items():
        assert word in reported[number], (number, reported[number])
    assert f"{len(goods)} valid, {len(bad)} invalid line(s)" in first.stderr
    assert first.stdout.splitlines() == ["state        count", f"Finished     {len(goods):>5}"], first.stdout

    def stored(good: Good, path: str) -> bytes:
        with bulk_host.client(good.owner) as client:
            return fetch(client, good.name, good.version, good.owner, path)

    with ThreadPoolExecutor(8) as pool:
        downloaded = list(pool.map(lambda g: stored(g, "weights.bin"), goods))
    assert [len(data) for data in downloaded] == [len(g.weights) for g in goods]
    assert all(data == good.weights for data, good in zip(downloaded, goods, strict=True))
    for good in goods[:: len(goods) // 5]:
        with bulk_host.client(good.owner) as client:
            status = client.get(f"/api/v1.0/model/{good.name}/{good.version}/status").json()
        assert status["state"] == "Finished", status
        assert {f["name"]: f["state"] for f in status["files"]} == dict.fromkeys(
            [*SMALL_FILES, "weights.bin"], "Finished"
        )
        for name, data in SMALL_FILES.items():
            assert stored(good, name) == data
    with bulk_host.client("alice") as client:
        assert client.get("/api/v1.0/model/typed/1/status").status_code == 404, "a bad line sends nothing"

    _wait_until_the_queue_drains(bulk_env)
    before = _snapshot(deps, models, goods)
    assert {state for _, _, state in before["records"].values()} == {"Finished"}
    assert len(before["blobs"]) == len(goods) * 4
    log_mark = len(bulk_host.log)

    second, second_seconds = _run_cli(manifest, bulk_env)
    _wait_until_the_queue_drains(bulk_env)

    assert second.returncode == 1, second.stderr[-3000:]
    assert _reported_lines(second.stderr, manifest) == reported
    assert second.stdout == first.stdout
    after = _snapshot(deps, models, goods)
    assert after["records"] == before["records"], "a registration was recorded again"
    assert after["blobs"] == before["blobs"], "a file was copied again"
    replays = [
        line for line in bulk_host.log[log_mark:] if re.search(r"job \S+ \(delivery \d+\): Finished", line)
    ]
    assert len(replays) >= len(goods), "every re-sent registration was handled as a replay"
    print(f"first run {first_seconds:.1f}s, re-run {second_seconds:.1f}s")
