"""Registrations accepted per second through the HTTP API, against the storage ceiling.

The API side is the local Functions host (a subprocess) on its own in-memory Azurite: each request
is a PUT of a distinct name/version whose files point at the owner account. The ceiling is what one
registration costs the storage at least, done from this process at the same concurrency: one Table
insert of an entity the API itself wrote (so of the same size) plus one queue message.
"""

from __future__ import annotations

import json
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from azure.data.tables import TableClient, TableServiceClient
from azure.storage.queue import QueueClient, QueueServiceClient, TextBase64EncodePolicy

from bench.load import Failure, Load, LoadResult
from bench.processes import LocalHost, running_azurite, running_host, sealing_key
from bench.report import Figure
from bench.sources import OwnerContainer
from devhost.azurite import Azurite
from registry.records import CopyJob
from registry.settings import JOBS_QUEUE

MODEL = "bench-model"
REGISTRATIONS_TABLE = "registrations"
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
    per_round: int = 1500
    rounds: int = 3

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
        entity = {**self.template, "PartitionKey": self.owner, "RowKey": f"{MODEL}:{version}"}
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


def _template_entity(azurite: Azurite, owner: str, version: str) -> dict[str, Any]:
    """An entity the API wrote, as a plain dict (its size is what the ceiling inserts)."""
    with TableClient.from_connection_string(azurite.connection_string(), REGISTRATIONS_TABLE) as table:
        entity = table.get_entity(owner, f"{MODEL}:{version}")
    return dict(entity)


def _queue_depth(azurite: Azurite, queue: str) -> int:
    with QueueClient.from_connection_string(azurite.connection_string(), queue) as client:
        return int(client.get_queue_properties().approximate_message_count or 0)


def _describe(result: LoadResult) -> dict[str, Any]:
    return {
        "operations": result.operations,
        "seconds": round(result.seconds, 3),
        "rate": round(result.rate, 1),
        "errors": dict(result.errors),
    }


def run(plan: RegistrationPlan, log_dir: Path | None = None) -> Figure:
    owner = f"bench-{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory(prefix="bench-registration-") as scratch:
        logs = log_dir or Path(scratch)
        with running_azurite(None) as azurite:
            settings = {
                "AzureWebJobsStorage": azurite.connection_string(),
                "REGISTRY_SEALING_KEY": sealing_key(),
                "REGISTRY_DEV_MODE": "true",
                "REGISTRY_ALLOW_INSECURE_SOURCES": "true",
            }
            service = TableServiceClient.from_connection_string(azurite.connection_string())
            service.create_table_if_not_exists(CEILING_TABLE)
            QueueServiceClient.from_connection_string(azurite.connection_string()).create_queue(CEILING_QUEUE)
            sources = OwnerContainer(azurite, "model-sources")
            base, sas = sources.container.url, sources.container_sas()
            total = plan.warmup + plan.rounds * plan.per_round
            bodies = {i: json.dumps(request_body(base, sas, _version(i))).encode() for i in range(total)}
            with running_host(settings, logs / "host.log") as host:
                api = ApiLoad(host, owner, bodies)
                warm_api = api.load().run(plan.warmup, plan.concurrency, first_index=0)
                if warm_api.errors:
                    raise RuntimeError(
                        f"the API refused the warm-up registrations: {warm_api.samples}\n{host.tail()}"
                    )
                ceiling = CeilingLoad(
                    azurite.connection_string(), owner, _template_entity(azurite, owner, "1.0.0")
                )
                # The ceiling's rows use the same keys as the API's, in another table.
                ceiling.load().run(plan.warmup, plan.concurrency, first_index=0)
                api_rounds: list[LoadResult] = []
                ceiling_rounds: list[LoadResult] = []
                for round_no in range(plan.rounds):
                    first = plan.warmup + round_no * plan.per_round
                    # Alternate which side goes first, so that drift in the machine's load favours neither.
                    order = ("api", "ceiling") if round_no % 2 == 0 else ("ceiling", "api")
                    for side in order:
                        if side == "api":
                            api_rounds.append(api.load().run(plan.per_round, plan.concurrency, first))
                        else:
                            ceiling_rounds.append(ceiling.load().run(plan.per_round, plan.concurrency, first))
                backlog = _queue_depth(azurite, JOBS_QUEUE)
    best_api = max(api_rounds, key=lambda r: r.rate)
    best_ceiling = max(ceiling_rounds, key=lambda r: r.rate)
    errors = sum((r.errors for r in api_rounds), start=type(best_api.errors)())
    samples = [s for r in api_rounds for s in r.samples][:3]
    return Figure(
        key="registration_throughput",
        label="registrations/s via HTTP API",
        unit="registrations/s",
        value=best_api.rate,
        baseline=best_ceiling.rate,
        baseline_label="ceiling",
        target=">= 0.8",
        details={
            "baseline_is": "Table insert + queue send through the SDK, same concurrency",
            "concurrency": plan.concurrency,
            "requests_per_round": plan.per_round,
            "rounds": plan.rounds,
            "api_errors": dict(errors),
            "api_error_samples": samples,
            "api_rounds": [_describe(r) for r in api_rounds],
            "ceiling_rounds": [_describe(r) for r in ceiling_rounds],
            "jobs_queue_backlog_at_end": backlog,
        },
    )
