"""Registrations finished per minute through bulk (the job queue), against one by one through the API.

One in-memory Azurite and the local Functions host serving the real function_app.py with its job
worker running (host.json as deployed: queues batchSize 4, newBatchThreshold 2, maxPollingInterval
2 s), per-invocation log lines off, and the bulk owner allowed by REGISTRY_BULK_OWNERS. The models
are small (a few files of a few KB, the same few source blobs in the owner's account for all).

- Bulk: the manifest's lines validated as the CLI does (`registry.bulk.read_manifest`), then sent
  with the CLI's own `registry.bulk.send` (`deps.queue.send_batch`); the clock runs from the first
  send until the store holds every registration Finished.
- HTTP: the same number of models registered one by one (sequential PUTs from one client, as a
  script would), by another owner; the clock runs from the first PUT until every one is Finished.

Both sides are followed through the registry's store (one query of the owner's partition per
poll). Meanwhile the job queue's length and the host's and Azurite's CPU time are sampled, to
show what bounds the rate.
"""

from __future__ import annotations

import io
import json
import os
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from azure.storage.queue import QueueClient

from bench.copying import SMALL_FILES, request_body
from bench.processes import QUIET_HOST, LocalHost, app_settings, running_azurite, running_host
from bench.report import REPORT_ONLY, Figure
from bench.sources import OwnerContainer
from registry import bulk
from registry.bootstrap import build
from registry.domain.listing import ModelFilter
from registry.domain.vocabulary import State
from registry.services.dependencies import Dependencies
from registry.settings import load_settings

BULK_OWNER = "bench-bulk"
HTTP_OWNER = "bench-http"
WEIGHTS = 3  # distinct weight blobs, shared by all the models
WEIGHT_BYTES = 4096
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class BulkPlan:
    models: int = 500
    batch_size: int = 100  # the CLI's default
    timeout: float = 600.0  # per side, until every registration has ended

    @classmethod
    def quick(cls) -> BulkPlan:
        return cls(models=40)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


@dataclass
class Side:
    label: str
    models: int
    seconds: float = 0.0  # first request or send, to the last registration Finished
    submit_seconds: float = 0.0  # until every request or message was sent
    states: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    queue_lengths: list[int] = field(default_factory=list)
    host_cpu_seconds: float = 0.0
    azurite_cpu_seconds: float = 0.0

    @property
    def per_minute(self) -> float:
        return self.states[State.FINISHED.value] / self.seconds * 60 if self.seconds else 0.0

    def describe(self) -> dict[str, Any]:
        lengths = self.queue_lengths or [0]
        return {
            "models": self.models,
            "finished": self.states[State.FINISHED.value],
            "states": dict(self.states),
            "failures": self.failures[:3],
            "seconds": round(self.seconds, 2),
            "submit_seconds": round(self.submit_seconds, 2),
            "per_minute": round(self.per_minute, 1),
            "job_queue_length": {"max": max(lengths), "median": statistics.median(lengths)},
            "host_cpu_share": round(self.host_cpu_seconds / self.seconds, 2) if self.seconds else None,
            "azurite_cpu_share": round(self.azurite_cpu_seconds / self.seconds, 2) if self.seconds else None,
        }


class Stack:
    """The host, Azurite, the registry's adapters (for the store and the CLI's sending) and sources."""

    def __init__(self, host: LocalHost, azurite_pid: int, deps: Dependencies, urls: list[dict[str, str]]):
        self.host = host
        self.azurite_pid = azurite_pid
        self.deps = deps
        self.urls = urls  # per weight blob, the model's files
        connection = str(deps.settings.storage_connection_string)
        self.jobs = QueueClient.from_connection_string(connection, deps.settings.jobs_queue)

    def body(self, index: int) -> dict[str, Any]:
        return request_body(self.urls[index % len(self.urls)])

    def follow(
        self, side: Side, owner: str, began: float, submit: Callable[[], None], timeout: float
    ) -> None:
        """Run `submit`, then poll the owner's registrations until every one has ended."""
        host_cpu, azurite_cpu = cpu_seconds(self.host.pid), cpu_seconds(self.azurite_pid)
        submit()
        side.submit_seconds = time.perf_counter() - began
        deadline = time.monotonic() + timeout
        while True:
            states = Counter(m.state for m in self.deps.store.own_models(owner, "", ModelFilter()))
            side.queue_lengths.append(self.jobs.get_queue_properties().approximate_message_count or 0)
            if states[State.IN_PROGRESS.value] == 0 and sum(states.values()) == side.models:
                side.seconds = time.perf_counter() - began
                side.states = states
                break
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{side.label}: after {timeout:.0f} s the registrations were {dict(states)}"
                )
            time.sleep(0.2)
        side.host_cpu_seconds = cpu_seconds(self.host.pid) - host_cpu
        side.azurite_cpu_seconds = cpu_seconds(self.azurite_pid) - azurite_cpu
        for model in self.deps.store.own_models(owner, "", ModelFilter()):
            if model.state != State.FINISHED.value and len(side.failures) < 3:
                registration = self.deps.store.get(owner, model.name, model.version)
                side.failures.append(f"{model.name}: {registration.message if registration else '?'}")

    def close(self) -> None:
        self.jobs.close()


def model_name(index: int) -> str:
    return f"small-{index:04d}"


def through_bulk(stack: Stack, plan: BulkPlan) -> Side:
    manifest = "".join(
        json.dumps({"name": model_name(i), "version": "1.0", "owner": BULK_OWNER, "body": stack.body(i)})
        + "\n"
        for i in range(plan.models)
    )
    jobs, bad = bulk.read_manifest(io.StringIO(manifest), stack.deps.settings)
    if bad or len(jobs) != plan.models:
        raise RuntimeError(f"the manifest has bad lines: {bad[:3]}")
    side = Side("bulk", plan.models)
    began = time.perf_counter()
    stack.follow(
        side,
        BULK_OWNER,
        began,
        lambda: bulk.send(jobs, stack.deps, plan.batch_size, progress=False),
        plan.timeout,
    )
    return side


def through_http(stack: Stack, plan: BulkPlan) -> Side:
    headers = {"X-MS-CLIENT-PRINCIPAL-ID": HTTP_OWNER, "X-MS-CLIENT-PRINCIPAL-NAME": HTTP_OWNER}
    bodies = [json.dumps(stack.body(i)).encode() for i in range(plan.models)]
    side = Side("http", plan.models)
    with httpx.Client(base_url=stack.host.base_url, headers=headers, timeout=60) as client:

        def submit() -> None:
            for i, body in enumerate(bodies):
                response = client.put(
                    f"/api/v1.0/model/{model_name(i)}/1.0",
                    content=body,
                    headers={"Content-Type": "application/json"},
                )
                if response.status_code != 202:
                    raise RuntimeError(f"PUT answered {response.status_code}: {response.text[:300]}")

        client.get("/api/v1.0/models", params={"limit": "1"})  # the connection, before the clock
        began = time.perf_counter()
        stack.follow(side, HTTP_OWNER, began, submit, plan.timeout)
    return side


def run(plan: BulkPlan, log_dir: Path | None = None) -> list[Figure]:
    with (
        tempfile.TemporaryDirectory(prefix="bench-bulk-") as scratch,
        running_azurite(None) as azurite,
    ):
        settings = app_settings(azurite.connection_string(), REGISTRY_BULK_OWNERS=BULK_OWNER, **QUIET_HOST)
        deps = build(load_settings(settings))
        sources = OwnerContainer(azurite, "model-sources")
        small = {name: sources.upload_bytes(name, data).url for name, data in SMALL_FILES.items()}
        urls = [
            small | {"weights.bin": sources.upload_bytes(f"weights-{w}.bin", os.urandom(WEIGHT_BYTES)).url}
            for w in range(WEIGHTS)
        ]
        with running_host(settings, (log_dir or Path(scratch)) / "host-bulk.log") as host:
            stack = Stack(host, azurite.process.pid, deps, urls)
            try:
                http = through_http(stack, plan)
                queued = through_bulk(stack, plan)
            finally:
                stack.close()
    for side in (http, queued):
        if side.states[State.FINISHED.value] != plan.models:
            raise RuntimeError(f"{side.label}: not every registration finished: {side.describe()}")
    figure = Figure(
        key="bulk_throughput",
        label=f"registrations finished per minute, {plan.models} small models via bulk",
        unit="per minute",
        value=queued.per_minute,
        baseline=http.per_minute,
        baseline_label="one by one via HTTP",
        target=REPORT_ONLY,
        details={
            "baseline_is": f"{plan.models} sequential PUTs by another owner until all Finished, same host",
            "target_note": "issue 4 sets no target for this figure",
            "bulk_is": "registry.bulk.read_manifest + registry.bulk.send (deps.queue.send_batch), "
            f"batches of {plan.batch_size}, until all Finished",
            "model_files": f"{len(SMALL_FILES)} small + 1 of {WEIGHT_BYTES} bytes ({WEIGHTS} blobs shared)",
            "host_json_queues": "batchSize 4, newBatchThreshold 2, maxPollingInterval 2 s",
            "bulk": queued.describe(),
            "http": http.describe(),
        },
    )
    return [figure]
