"""Registrations accepted per second through the HTTP API, against the storage ceiling.

The API side is the local Functions host (a subprocess) serving the real function_app.py with its
queue and timer functions disabled (`AzureWebJobs.<name>.Disabled`, as the Functions host reads
it), so that no worker takes the jobs, and with per-invocation log lines off, on its own in-memory
Azurite: each request is a PUT of a distinct name/version whose files point at the owner account.
The ceiling is what one registration costs the storage at least, done from this process at the
same concurrency: one Table insert of an entity the API itself wrote (so of the same size) plus
one queue message.
"""

from __future__ import annotations

import json
import tempfile
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from azure.data.tables import TableClient, TableServiceClient
from azure.storage.queue import QueueClient, QueueServiceClient, TextBase64EncodePolicy

from bench.load import Failure, Load, LoadResult
from bench.processes import (
    QUIET_HOST,
    WORKER_DISABLED,
    LocalHost,
    app_settings,
    running_azurite,
    running_host,
)
from bench.report import Figure
from bench.sources import OwnerContainer
from registry.domain.jobs import CopyJob
from registry.domain.listing import sort_key
from registry.settings import load_settings

MODEL = "bench-model"
CEILING_TABLE = "benchceiling"
CEILING_QUEUE = "benchceiling"
MODEL_FILES = (
    "score.py",
    "environment.yml",
    "index.md",
    "config.json",
    "tokenizer.json",
    *(f"weights/model-{i:05d}-of-00004.safetensors" for i in range(1, 5)),
)


@dataclass(frozen=True)
class RegistrationPlan:
    concurrency: int = 16
    warmup: int = 200
    per_round: int = 1000
    rounds: int = 3  # of each side, per phase

    @classmethod
    def quick(cls) -> RegistrationPlan:
        return cls(concurrency=16, warmup=32, per_round=160, rounds=1)


def request_body(source_base: str, sas: str, version: str) -> dict[str, Any]:
    """A valid registration whose files sit under `{name}/{version}/` in the owner's container."""
    files = {target: f"{source_base}/{MODEL}/{version}/{target}?{sas}" for target in MODEL_FILES}
    return {
        "model_config": {
            "type": "DECODER",
            "description": "A benchmark model: registration only, its files are never read",
            "private": True,
            "inference_properties": {"entry_script": "score.py", "conda_env": "environment.yml"},
        },
        "model_files": files,
        "model_metainfo": {
            "input_types": ["NATURAL_LANGUAGE"],
            "input_languages": ["en"],
            "input_description": "Any text",
            "output_types": ["NATURAL_LANGUAGE"],
            "output_languages": ["en"],
            "output_description": "The completion of the text",
            "num_params": 7_000_000_000,
            "index_page_file": "index.md",
        },
    }


def _version(index: int) -> str:
    return f"1.0.{index}"


class ApiLoad:
    """PUT /api/v1.0/model/{name}/{version}: every answer other than 202 is an error."""

    def __init__(self, host: LocalHost, owner: str, bodies: dict[int, bytes]) -> None:
        self.host = host
        self.headers = {
            "X-MS-CLIENT-PRINCIPAL-ID": owner,
            "X-MS-CLIENT-PRINCIPAL-NAME": f"{owner}@example.com",
            "Content-Type": "application/json",
        }
        self.bodies = bodies

    def open(self) -> httpx.Client:
        return httpx.Client(base_url=self.host.base_url, headers=self.headers, timeout=60)

    def register(self, client: httpx.Client, index: int) -> None:
        response = client.put(f"/api/v1.0/model/{MODEL}/{_version(index)}", content=self.bodies.pop(index))
        if response.status_code != 202:
            raise Failure(f"HTTP {response.status_code}", response.text[:300])

    def load(self) -> Load[httpx.Client]:
        return Load(self.open, self.register, lambda client: client.close())


class CeilingLoad:
    """One Table insert plus one enqueue through the SDK: the least a registration can cost."""

    def __init__(self, connection_string: str, owner: str, template: dict[str, Any]) -> None:
        self.connection_string = connection_string
        self.owner = owner
        self.template = template

    def open(self) -> tuple[TableClient, QueueClient]:
        table = TableClient.from_connection_string(self.connection_string, CEILING_TABLE)
        queue = QueueClient.from_connection_string(
            self.connection_string, CEILING_QUEUE, message_encode_policy=TextBase64EncodePolicy()
        )
        return table, queue

    def record(self, clients: tuple[TableClient, QueueClient], index: int) -> None:
        table, queue = clients
        version = _version(index)
        entity = {**self.template, "PartitionKey": self.owner, "RowKey": sort_key(MODEL, version)}
        entity["version"] = version
        entity["registration_id"] = uuid.uuid4().hex
        table.create_entity(entity)
        queue.send_message(CopyJob(self.owner, MODEL, version, entity["registration_id"]).to_json())

    @staticmethod
    def close(clients: tuple[TableClient, QueueClient]) -> None:
        for client in clients:
            client.close()

    def load(self) -> Load[tuple[TableClient, QueueClient]]:
        return Load(self.open, self.record, self.close)


def _template_entity(connection_string: str, table_name: str, owner: str) -> dict[str, Any]:
    """One registration entity the API wrote, as a plain dict: the ceiling inserts its like."""
    with TableClient.from_connection_string(connection_string, table_name) as table:
        for entity in table.query_entities("PartitionKey eq @owner", parameters={"owner": owner}):
            return dict(entity)
    raise RuntimeError(f"the API wrote no registration of {owner} in table {table_name!r}")


def _describe(result: LoadResult) -> dict[str, Any]:
    return {
        "operations": result.operations,
        "seconds": round(result.seconds, 3),
        "rate": round(result.rate, 1),
        "errors": dict(result.errors),
    }


@dataclass
class Rounds:
    api: list[LoadResult]
    ceiling: list[LoadResult]
    jobs_enqueued: int  # messages on the job queue at the end: none was taken by a worker
    registrations: int  # the API's successful registrations, warm-up included

    @property
    def best_api(self) -> LoadResult:
        return max(self.api, key=lambda r: r.rate)

    @property
    def best_ceiling(self) -> LoadResult:
        return max(self.ceiling, key=lambda r: r.rate)


def measure(plan: RegistrationPlan, log_path: Path) -> Rounds:
    """One Azurite, the app's host (HTTP functions only), and the API and ceiling rounds, interleaved."""
    owner = f"bench-{uuid.uuid4().hex[:8]}"
    with running_azurite(None) as azurite:
        connection = azurite.connection_string()
        settings = app_settings(connection, **WORKER_DISABLED, **QUIET_HOST)
        TableServiceClient.from_connection_string(connection).create_table_if_not_exists(CEILING_TABLE)
        QueueServiceClient.from_connection_string(connection).create_queue(CEILING_QUEUE)
        sources = OwnerContainer(azurite, "model-sources")
        base, sas = sources.container.url, sources.container_sas()
        total = plan.warmup + plan.rounds * plan.per_round
        bodies = {i: json.dumps(request_body(base, sas, _version(i))).encode() for i in range(total)}
        with running_host(settings, log_path) as host:
            api = ApiLoad(host, owner, bodies)
            warm = api.load().run(plan.warmup, plan.concurrency, first_index=0)
            if warm.errors:
                raise RuntimeError(
                    f"the API refused the warm-up registrations: {warm.samples}\n{host.tail()}"
                )
            # The ceiling inserts an entity the API wrote (same size), under the same keys in another table.
            app = load_settings(settings)
            ceiling = CeilingLoad(
                connection, owner, _template_entity(connection, app.registrations_table, owner)
            )
            ceiling.load().run(plan.warmup, plan.concurrency, first_index=0)
            rounds = Rounds([], [], 0, warm.succeeded)
            for round_no in range(plan.rounds):
                first = plan.warmup + round_no * plan.per_round
                # Alternate which side goes first, so that drift in the machine's load favours neither.
                if round_no % 2 == 0:
                    rounds.api.append(api.load().run(plan.per_round, plan.concurrency, first))
                rounds.ceiling.append(ceiling.load().run(plan.per_round, plan.concurrency, first))
                if round_no % 2 == 1:
                    rounds.api.append(api.load().run(plan.per_round, plan.concurrency, first))
            rounds.registrations += sum(r.succeeded for r in rounds.api)
            with QueueClient.from_connection_string(connection, app.jobs_queue) as jobs:
                rounds.jobs_enqueued = jobs.get_queue_properties().approximate_message_count or 0
    return rounds


def run(plan: RegistrationPlan, log_dir: Path | None = None) -> list[Figure]:
    """The app as deployed, served with its queue and timer functions disabled by the Functions
    host's `AzureWebJobs.<name>.Disabled` settings, against the ceiling, on one Azurite."""
    with tempfile.TemporaryDirectory(prefix="bench-registration-") as scratch:
        rounds = measure(plan, (log_dir or Path(scratch)) / "host-registration.log")
    errors: Counter[str] = Counter()
    for result in rounds.api:
        errors.update(result.errors)
    figure = Figure(
        key="registration_throughput",
        label="registrations/s via HTTP API",
        unit="registrations/s",
        value=rounds.best_api.rate,
        baseline=rounds.best_ceiling.rate,
        baseline_label="ceiling",
        target=">= 0.8",
        details={
            "baseline_is": "Table insert + queue send through the SDK, same concurrency",
            "app": "function_app.py; copy_worker, copy_poisoned, requeue_quiet_registrations disabled "
            "(AzureWebJobs.<name>.Disabled); DEVHOST_LOG_LEVEL=WARNING",
            "concurrency": plan.concurrency,
            "requests_per_round": plan.per_round,
            "best_of_rounds": plan.rounds,
            "api_errors": dict(errors),
            "api_error_samples": [s for r in rounds.api for s in r.samples][:3],
            "api_rounds": [_describe(r) for r in rounds.api],
            "ceiling_rounds": [_describe(r) for r in rounds.ceiling],
            # Every registration's job still on the queue: no worker consumed any.
            "jobs_left_on_queue": rounds.jobs_enqueued,
            "registrations_accepted": rounds.registrations,
        },
    )
    return [figure]
