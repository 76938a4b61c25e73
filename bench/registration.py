"""Registrations accepted per second: the HTTP function in-process, and through the local host,
each against the storage ceiling.

One in-memory Azurite, admission limits out of the way (no rate limit, a high in-progress quota).
Every registration is a PUT of a distinct name/version whose files point at the owner account
(they are never read: no worker runs), by one of many owners, each registering 20 models (the
default quota's worth: see PER_OWNER).

- In-process (the figure with a target): the register route's function as the Functions host
  calls it, `registry.blueprints.http.serve(request, route, deps)`, with a `func.HttpRequest` built
  here and `deps = build(settings)`: the real adapters on the storage, shared by all threads as
  one worker process shares them.
- Through the local host (report only): the same PUT over HTTP to `python -m devhost` serving
  function_app.py, its queue and timer functions disabled (`AzureWebJobs.<name>.Disabled`) and
  its per-invocation log lines off. The host's HTTP server is not what runs in Azure.
- The ceiling: what one registration costs the storage at least, done from this process at the
  same concurrency, on one table and one queue client sharing one transport (as the app's do): the
  same Table write (the entities the API itself wrote for a registration: its record, its
  listing's index rows and its events' outbox rows, so of the same size, under new keys, in one
  entity group transaction as the registry writes them) plus the same queue message.

The three sides run in rounds, their order rotating, so that drift in the machine's load favours
none. Each figure is its side's median round against the ceiling's median round (medians, not
the best rounds: on a shared machine one lucky round decides a best-of); the ratios of the rounds
run side by side are reported too.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import azure.functions as func
import httpx
from azure.data.tables import TableClient
from azure.storage.queue import QueueClient, TextBase64EncodePolicy

from bench.counting import counted_build, services_of
from bench.load import Failure, Load, LoadResult
from bench.processes import (
    QUIET_HOST,
    WORKER_DISABLED,
    LocalHost,
    app_settings,
    running_azurite,
    running_host,
)
from bench.report import REPORT_ONLY, Figure
from bench.sources import OwnerContainer
from registry.adapters.table_codec import OUTBOX_MARK
from registry.blueprints import models_api
from registry.blueprints.http import Route, serve
from registry.bootstrap import shared_transport
from registry.domain.jobs import CopyJob
from registry.domain.listing import sort_key
from registry.services.dependencies import Dependencies
from registry.settings import Settings, load_settings

MODEL = "bench-model"
CEILING_TABLE = "benchceiling"
CEILING_QUEUE = "benchceiling"
REGISTER = "register_model"  # the route's operation id
# Registrations per owner: as many as the default in-progress quota lets an owner have. Each
# request's admission reads its owner's in-progress registrations (at most every 2 s per owner):
# owners with a production-sized backlog keep that read as small as it is in production.
PER_OWNER = 20
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
    per_round: int = 500
    rounds: int = 6  # of each side: each side goes first, second and third twice

    @classmethod
    def quick(cls) -> RegistrationPlan:
        return cls(concurrency=16, warmup=32, per_round=160, rounds=3)


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


def version_of(index: int) -> str:
    return f"1.0.{index}"


def owner_of(side: str, index: int) -> str:
    return f"{side}-{index // PER_OWNER:05d}"


def principal_headers(owner: str) -> dict[str, str]:
    return {
        "X-MS-CLIENT-PRINCIPAL-ID": owner,
        "X-MS-CLIENT-PRINCIPAL-NAME": f"{owner}@example.com",
        "Content-Type": "application/json",
    }


def register_route() -> Route:
    return next(route for route in models_api.routes() if route.operation_id == REGISTER)


def put_request(owner: str, name: str, version: str, body: bytes) -> func.HttpRequest:
    """The request the Functions host hands the register function."""
    return func.HttpRequest(
        "PUT",
        f"http://localhost:7071/api/v1.0/model/{name}/{version}",
        headers=principal_headers(owner),
        params={},
        route_params={"name": name, "version": version},
        body=body,
    )


class InProcessLoad:
    """The register function called as the Functions host calls it: every answer but 202 is an error."""

    def __init__(self, deps: Dependencies, side: str, bodies: dict[int, bytes]) -> None:
        self.deps = deps
        self.route = register_route()
        self.side = side
        self.bodies = bodies

    def register(self, _session: None, index: int) -> None:
        request = put_request(owner_of(self.side, index), MODEL, version_of(index), self.bodies[index])
        response = serve(request, self.route, self.deps)
        if response.status_code != 202:
            raise Failure(f"HTTP {response.status_code}", (response.get_body() or b"").decode()[:300])

    def load(self) -> Load[None]:
        return Load(lambda: None, self.register, lambda _: None)


class HostLoad:
    """PUT /api/v1.0/model/{name}/{version} over HTTP to the local host, one client per thread."""

    def __init__(self, host: LocalHost, side: str, bodies: dict[int, bytes]) -> None:
        self.host = host
        self.side = side
        self.bodies = bodies

    def open(self) -> httpx.Client:
        return httpx.Client(base_url=self.host.base_url, timeout=60)

    def register(self, client: httpx.Client, index: int) -> None:
        response = client.put(
            f"/api/v1.0/model/{MODEL}/{version_of(index)}",
            content=self.bodies[index],
            headers=principal_headers(owner_of(self.side, index)),
        )
        if response.status_code != 202:
            raise Failure(f"HTTP {response.status_code}", response.text[:300])

    def load(self) -> Load[httpx.Client]:
        return Load(self.open, self.register, lambda client: client.close())


@dataclass(frozen=True)
class WrittenRows:
    """What the registry wrote for one registration: its record, its listing's index rows and
    its events (outbox rows), all in the owner's partition."""

    record: dict[str, Any]
    index_rows: list[dict[str, Any]]
    outbox_rows: list[dict[str, Any]]

    def rekeyed(self, owner: str, version: str, registration_id: str) -> list[tuple[str, dict[str, Any]]]:
        """The same entities for another registration, as the operations the registry sends."""
        old_key, new_key = self.record["RowKey"], sort_key(MODEL, version)
        record = {**self.record, "PartitionKey": owner, "RowKey": new_key}
        record |= {"owner": owner, "version": version, "registration_id": registration_id}
        operations = [("create", record)]
        for row in self.index_rows:
            key = row["RowKey"].removesuffix(old_key) + new_key
            operations.append(("upsert", {**row, "PartitionKey": owner, "RowKey": key, "version": version}))
        for row in self.outbox_rows:
            key = f"{OUTBOX_MARK}{row['RowKey'].removeprefix(OUTBOX_MARK)[:21]}-{uuid.uuid4()}"
            operations.append(("create", {**row, "PartitionKey": owner, "RowKey": key}))
        return operations


def written_rows(connection_string: str, settings: Settings, owner: str) -> WrittenRows:
    """The rows the API wrote for the owner's one registration, as plain dicts."""
    key = sort_key(MODEL, version_of(0))
    with TableClient.from_connection_string(connection_string, settings.registrations_table) as table:
        rows = [dict(e) for e in table.query_entities("PartitionKey eq @owner", parameters={"owner": owner})]
    records = [row for row in rows if row["RowKey"] == key]
    if len(records) != 1:
        raise RuntimeError(
            f"the API wrote no registration {key} of {owner} in {settings.registrations_table}"
        )
    return WrittenRows(
        records[0],
        [row for row in rows if row["RowKey"] != key and row["RowKey"].endswith(key)],
        [row for row in rows if row["RowKey"].startswith(OUTBOX_MARK)],
    )


class CeilingLoad:
    """The same Table write and queue message as a registration, through the SDK, nothing else."""

    def __init__(self, table: TableClient, queue: QueueClient, side: str, rows: WrittenRows) -> None:
        self.table = table
        self.queue = queue
        self.side = side
        self.rows = rows

    def record(self, _session: None, index: int) -> None:
        owner, version, registration_id = owner_of(self.side, index), version_of(index), uuid.uuid4().hex
        operations = self.rows.rekeyed(owner, version, registration_id)
        if len(operations) > 1:  # as the registry's store writes a record with its other rows
            self.table.submit_transaction(operations)
        else:
            self.table.create_entity(operations[0][1])
        self.queue.send_message(CopyJob(owner, MODEL, version, registration_id).to_json())

    def load(self) -> Load[None]:
        return Load(lambda: None, self.record, lambda _: None)


@contextmanager
def ceiling_clients(connection_string: str) -> Iterator[tuple[TableClient, QueueClient]]:
    """A table and a queue client on one shared transport: the app's own client set-up."""
    transport = shared_transport()
    table = TableClient.from_connection_string(connection_string, CEILING_TABLE, transport=transport)
    queue = QueueClient.from_connection_string(
        connection_string, CEILING_QUEUE, message_encode_policy=TextBase64EncodePolicy(), transport=transport
    )
    table.create_table()
    queue.create_queue()
    try:
        yield table, queue
    finally:
        table.close()
        queue.close()
        transport.close()


def describe(result: LoadResult) -> dict[str, Any]:
    return {
        "operations": result.operations,
        "seconds": round(result.seconds, 3),
        "rate": round(result.rate, 1),
        "errors": dict(result.errors),
    }


@dataclass
class Rounds:
    in_process: list[LoadResult] = field(default_factory=list)
    host: list[LoadResult] = field(default_factory=list)
    ceiling: list[LoadResult] = field(default_factory=list)
    jobs_enqueued: int = 0  # messages on the job queue at the end: none was taken by a worker
    in_process_requests: Counter[str] = field(default_factory=Counter)  # storage requests, all rounds

    written: WrittenRows | None = None  # what one registration wrote, and the ceiling writes

    def side(self, name: str) -> list[LoadResult]:
        results: list[LoadResult] = getattr(self, name)
        return results

    @staticmethod
    def median(results: list[LoadResult]) -> float:
        return statistics.median(r.rate for r in results)

    def paired_ratios(self, side: str) -> list[float]:
        """Each round's rate over the ceiling's in the same round."""
        return [round(a.rate / b.rate, 3) for a, b in zip(self.side(side), self.ceiling, strict=True)]


Side = Callable[[int, int], LoadResult]  # (count, first index) -> result


def _warm(name: str, run: Side, plan: RegistrationPlan, log: Callable[[], str]) -> None:
    result = run(plan.warmup, 0)
    if result.errors:
        raise RuntimeError(f"{name}: the warm-up registrations failed: {result.samples}\n{log()}")


def measure(plan: RegistrationPlan, log_path: Path) -> Rounds:
    """One Azurite; the in-process function, the host's HTTP function and the ceiling, in rounds."""
    run_id = uuid.uuid4().hex[:8]
    prefixes = {side: f"{side}-{run_id}" for side in ("in_process", "host", "ceiling")}
    with running_azurite(None) as azurite:
        connection = azurite.connection_string()
        env = app_settings(connection, **WORKER_DISABLED, **QUIET_HOST)
        # Each side writes a table of its own, so that all three grow alike (the emulator's
        # queries scan a whole table, where Azure's read one partition).
        settings = load_settings({**env, "REGISTRY_REGISTRATIONS_TABLE": "inprocessregistrations"})
        sources = OwnerContainer(azurite, "model-sources")
        base, sas = sources.container.url, sources.container_sas()
        total = plan.warmup + plan.rounds * plan.per_round
        bodies = {i: json.dumps(request_body(base, sas, version_of(i))).encode() for i in range(total)}
        # Counting the requests costs a lock and a counter per request: small beside one (~10 ms).
        deps, transport = counted_build(settings, services_of(azurite))
        in_process = InProcessLoad(deps, prefixes["in_process"], bodies)
        with running_host(env, log_path) as host, ceiling_clients(connection) as (table, queue):
            over_http = HostLoad(host, prefixes["host"], bodies)
            sides: dict[str, Side] = {
                "in_process": lambda count, first: in_process.load().run(count, plan.concurrency, first),
                "host": lambda count, first: over_http.load().run(count, plan.concurrency, first),
            }
            for name, run in sides.items():
                _warm(name, run, plan, host.tail)
            # The ceiling writes what the API wrote for a registration (the same entities, of the
            # same size), under its own keys in its own table: one registration by an owner of its
            # own shows them all.
            template_owner = f"template-{run_id}"
            response = serve(
                put_request(template_owner, MODEL, version_of(0), bodies[0]), register_route(), deps
            )
            if response.status_code != 202:
                raise RuntimeError(f"the template registration answered {response.status_code}")
            written = written_rows(connection, settings, template_owner)
            ceiling = CeilingLoad(table, queue, prefixes["ceiling"], written)
            sides["ceiling"] = lambda count, first: ceiling.load().run(count, plan.concurrency, first)
            _warm("ceiling", sides["ceiling"], plan, host.tail)
            rounds = Rounds(written=written)
            requests_before = Counter(transport.counts)
            order = list(sides)
            for round_no in range(plan.rounds):
                first = plan.warmup + round_no * plan.per_round
                for name in order[round_no % 3 :] + order[: round_no % 3]:  # rotate who goes first
                    rounds.side(name).append(sides[name](plan.per_round, first))
            rounds.in_process_requests = transport.counts - requests_before
            with QueueClient.from_connection_string(connection, settings.jobs_queue) as jobs:
                rounds.jobs_enqueued = jobs.get_queue_properties().approximate_message_count or 0
    return rounds


def _errors(results: list[LoadResult]) -> tuple[dict[str, int], list[str]]:
    errors: Counter[str] = Counter()
    for result in results:
        errors.update(result.errors)
    return dict(errors), [s for r in results for s in r.samples][:3]


def run(plan: RegistrationPlan, log_dir: Path | None = None) -> list[Figure]:
    with tempfile.TemporaryDirectory(prefix="bench-registration-") as scratch:
        rounds = measure(plan, (log_dir or Path(scratch)) / "host-registration.log")
    ceiling = Rounds.median(rounds.ceiling)
    common = {
        "baseline_is": "the same Table write (the record, its index rows and its outbox rows, one entity "
        "group transaction) and queue message through the SDK, same process, same concurrency, one "
        "shared transport",
        "entities_written_per_registration": {
            "record": 1,
            "index_rows": len(rounds.written.index_rows) if rounds.written else None,
            "outbox_rows": len(rounds.written.outbox_rows) if rounds.written else None,
        },
        "concurrency": plan.concurrency,
        "registrations_per_owner": PER_OWNER,
        "requests_per_round": plan.per_round,
        "median_of_rounds": plan.rounds,
        "ceiling_rounds": [describe(r) for r in rounds.ceiling],
        # Every registration's job is still on the queue: no worker consumed any.
        "jobs_left_on_queue": rounds.jobs_enqueued,
        "registrations_accepted": sum(r.succeeded for r in rounds.in_process + rounds.host) + 2 * plan.warmup,
    }
    in_process_errors, in_process_samples = _errors(rounds.in_process)
    in_process_accepted = max(1, sum(r.succeeded for r in rounds.in_process))
    host_errors, host_samples = _errors(rounds.host)
    return [
        Figure(
            key="registration_throughput",
            label="registrations/s, the HTTP function in-process (real adapters)",
            unit="registrations/s",
            value=Rounds.median(rounds.in_process),
            baseline=ceiling,
            baseline_label="SDK ceiling",
            target=">= 0.85",
            details={
                **common,
                "measured": "registry.blueprints.http.serve(func.HttpRequest, register route, "
                f"build(settings)) on {plan.concurrency} threads, one Dependencies shared",
                "errors": in_process_errors,
                "error_samples": in_process_samples,
                "rounds": [describe(r) for r in rounds.in_process],
                "ratio_in_each_round": rounds.paired_ratios("in_process"),
                "storage_requests_per_registration": {
                    operation: round(count / in_process_accepted, 3)
                    for operation, count in sorted(rounds.in_process_requests.items())
                },
            },
        ),
        Figure(
            key="registration_throughput_http",
            label="registrations/s through the local host's HTTP server",
            unit="registrations/s",
            value=Rounds.median(rounds.host),
            baseline=ceiling,
            baseline_label="SDK ceiling",
            target=REPORT_ONLY,
            details={
                **common,
                "measured": "PUT over HTTP (httpx, one client per thread) to python -m devhost serving "
                "function_app.py; copy_worker, copy_poisoned, requeue_quiet_registrations disabled; "
                "DEVHOST_LOG_LEVEL=WARNING",
                "why_report_only": "the local host's HTTP server is a stand-in: in Azure the front "
                "end runs elsewhere",
                "errors": host_errors,
                "error_samples": host_samples,
                "rounds": [describe(r) for r in rounds.host],
                "ratio_in_each_round": rounds.paired_ratios("host"),
            },
        ),
    ]
