"""The time for one page of 100 models through the HTTP API, with 1,000 and with 20,000 in the catalog.

One in-memory Azurite and the local Functions host serving the real function_app.py (queue and
timer functions disabled, no per-invocation log lines). The models are written straight into the
registry's tables with batch transactions, as the registry itself writes them: one registration
entity per model (its owner's partition) and one catalog row per public model that finished,
each a copy of the entities that `register()` and `TableRegistrationStore.publish()` wrote for a
template model, under its own keys. The caller owns a few models of their own (its partition is
small), so a page merges both sources, as a real caller's would.

Each size is timed on a page from the middle of the list (`limit=100` and a continuation token the
API issued, reached by walking pages of 1,000), so that it is not just the first page: the median
of many sequential requests after a warm-up. The catalog grows from the small to the large size in
the same run, on the same host.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from azure.data.tables import TableClient

from bench.copying import request_body
from bench.processes import QUIET_HOST, WORKER_DISABLED, app_settings, running_azurite, running_host
from bench.report import Figure
from bench.sources import OwnerContainer
from registry.bootstrap import build
from registry.domain.listing import sort_key
from registry.domain.model import Registration
from registry.domain.vocabulary import State
from registry.identity import Principal
from registry.services.dependencies import Dependencies
from registry.services.registration import register
from registry.settings import load_settings

CALLER = Principal("bench-caller", "Bench Caller")
PUBLIC_OWNERS = 40  # the public models' owners: partitions of up to 500 models at 20,000
OWN_MODELS = 20  # the caller's own (private) models, spread through the list
PAGE = 100
BATCH = 100  # an entity group transaction takes at most 100 operations
WALK_PAGE = 1000  # the largest page the API gives: used to reach the middle of the list


@dataclass(frozen=True)
class ListingPlan:
    small: int = 1_000
    large: int = 20_000
    warmup: int = 5
    requests: int = 30

    @classmethod
    def quick(cls) -> ListingPlan:
        return cls(small=500, large=3_000, warmup=3, requests=10)


def model_name(index: int) -> str:
    return f"model-{index:06d}"


def public_owner(index: int) -> str:
    return f"owner-{index % PUBLIC_OWNERS:02d}"


@dataclass(frozen=True)
class Templates:
    """The entities the registry wrote for one finished public model: what every copy is made of."""

    registration: dict[str, Any]
    catalog: dict[str, Any]

    def registration_row(self, owner: str, name: str, version: str, *, public: bool) -> dict[str, Any]:
        row = dict(self.registration)
        row |= {"PartitionKey": owner, "RowKey": sort_key(name, version), "owner": owner}
        row |= {"owner_name": owner, "name": name, "version": version, "private": not public}
        return row

    def catalog_row(self, owner: str, name: str, version: str) -> dict[str, Any]:
        row = dict(self.catalog)
        row |= {"PartitionKey": self.catalog["PartitionKey"], "RowKey": sort_key(name, version, owner)}
        row |= {"owner": owner, "owner_name": owner, "name": name, "version": version}
        return row


def make_templates(deps: Dependencies, sources: OwnerContainer) -> Templates:
    """Register one public model through the registry's own service, finish it, publish it."""
    urls = {target: sources.blob_url(target) for target in ("score.py", "environment.yml", "index.md")}
    body = request_body(urls)
    body["model_config"]["private"] = False
    owner = Principal("template-owner", "Template Owner")
    registration: Registration = register(deps, owner, "template", "1.0", body)
    registration.state, registration.finished_once, registration.sealed = State.FINISHED, True, b""
    registration.message = "Finished"
    deps.store.replace(registration)
    deps.store.publish(registration)
    connection = str(deps.settings.storage_connection_string)
    with TableClient.from_connection_string(connection, deps.settings.registrations_table) as table:
        written = dict(table.get_entity(owner.id, sort_key("template", "1.0")))
    with TableClient.from_connection_string(connection, deps.settings.catalog_table) as table:
        listed = dict(table.get_entity("public", sort_key("template", "1.0", owner.id)))
        table.delete_entity("public", sort_key("template", "1.0", owner.id))  # not one of the counted
    return Templates(written, listed)


def _batches(rows: list[dict[str, Any]]) -> Iterator[list[tuple[str, dict[str, Any]]]]:
    """Batches of creates, each within one partition (as entity group transactions must be)."""
    by_partition: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_partition.setdefault(row["PartitionKey"], []).append(row)
    for partition in by_partition.values():
        for start in range(0, len(partition), BATCH):
            yield [("create", row) for row in partition[start : start + BATCH]]


class Catalog:
    """Writes models into the registry's tables, in batch transactions, a few batches at a time."""

    def __init__(self, deps: Dependencies, templates: Templates) -> None:
        connection = str(deps.settings.storage_connection_string)
        self.registrations = TableClient.from_connection_string(connection, deps.settings.registrations_table)
        self.catalog = TableClient.from_connection_string(connection, deps.settings.catalog_table)
        self.templates = templates
        self.public = 0

    def _submit(self, table: TableClient, rows: list[dict[str, Any]]) -> None:
        with ThreadPoolExecutor(8, thread_name_prefix="catalog") as pool:
            for done in pool.map(table.submit_transaction, _batches(rows)):
                if len(done) == 0:
                    raise RuntimeError("a batch transaction wrote nothing")

    def grow_to(self, count: int) -> None:
        """Public finished models `self.public` .. `count - 1`: registrations and catalog rows."""
        indexes = range(self.public, count)
        t = self.templates
        self._submit(
            self.registrations,
            [t.registration_row(public_owner(i), model_name(i), "1.0", public=True) for i in indexes],
        )
        self._submit(self.catalog, [t.catalog_row(public_owner(i), model_name(i), "1.0") for i in indexes])
        self.public = count

    def add_own(self, count: int, spread: int) -> None:
        """The caller's private models, their names spread over the whole list."""
        rows = [
            self.templates.registration_row(CALLER.id, model_name(i * spread // count), "2.0", public=False)
            for i in range(count)
        ]
        self._submit(self.registrations, rows)

    def close(self) -> None:
        self.registrations.close()
        self.catalog.close()


@dataclass
class PageTimes:
    models: int  # public models in the catalog
    seconds: list[float]  # of the page from the middle
    first_page_seconds: list[float]
    walked_to: int  # models listed before the timed page
    page_items: int

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    def describe(self) -> dict[str, Any]:
        ms = sorted(s * 1000 for s in self.seconds)
        return {
            "public_models": self.models,
            "median_ms": round(self.median * 1000, 2),
            "min_ms": round(ms[0], 2),
            "max_ms": round(ms[-1], 2),
            "requests": len(ms),
            "first_page_median_ms": round(statistics.median(self.first_page_seconds) * 1000, 2),
            "page_starts_after": self.walked_to,
            "page_items": self.page_items,
        }


def _get(client: httpx.Client, params: dict[str, str]) -> dict[str, Any]:
    response = client.get("/api/v1.0/models", params=params)
    if response.status_code != 200:
        raise RuntimeError(f"listing answered {response.status_code}: {response.text[:300]}")
    page: dict[str, Any] = response.json()
    return page


def middle_token(client: httpx.Client, total: int) -> tuple[str, int]:
    """Walk the list in pages of up to 1,000 to about its middle: the token the API issued there."""
    seen, token = 0, ""
    while seen < total // 2:
        params = {"limit": str(min(WALK_PAGE, total // 2 - seen))}
        if token:
            params["continuation"] = token
        page = _get(client, params)
        seen += len(page["models"])
        token = page["continuation"]
        if not token:
            raise RuntimeError(f"the list ended after {seen} models; expected {total}")
    return token, seen


def _timed(client: httpx.Client, params: dict[str, str]) -> tuple[float, dict[str, Any]]:
    began = time.perf_counter()
    page = _get(client, params)
    return time.perf_counter() - began, page


def time_pages(client: httpx.Client, plan: ListingPlan, public: int) -> PageTimes:
    token, walked = middle_token(client, public + OWN_MODELS)
    middle = {"limit": str(PAGE), "continuation": token}
    first = {"limit": str(PAGE)}
    for _ in range(plan.warmup):
        _timed(client, middle)
        _timed(client, first)
    times = PageTimes(public, [], [], walked, 0)
    for _ in range(plan.requests):  # interleaved, so that drift favours neither
        seconds, page = _timed(client, middle)
        if len(page["models"]) != PAGE or not page["continuation"]:
            raise RuntimeError(f"the middle page held {len(page['models'])} models, expected {PAGE}")
        times.seconds.append(seconds)
        times.page_items = len(page["models"])
        times.first_page_seconds.append(_timed(client, first)[0])
    return times


def run(plan: ListingPlan, log_dir: Path | None = None) -> list[Figure]:
    with (
        tempfile.TemporaryDirectory(prefix="bench-listing-") as scratch,
        running_azurite(None) as azurite,
    ):
        settings = app_settings(azurite.connection_string(), **WORKER_DISABLED, **QUIET_HOST)
        deps = build(load_settings(settings))
        sources = OwnerContainer(azurite, "model-sources")
        catalog = Catalog(deps, make_templates(deps, sources))
        began = time.perf_counter()
        catalog.add_own(OWN_MODELS, plan.small)
        catalog.grow_to(plan.small)
        insert_small = time.perf_counter() - began
        headers = {"X-MS-CLIENT-PRINCIPAL-ID": CALLER.id, "X-MS-CLIENT-PRINCIPAL-NAME": CALLER.name}
        log_path = (log_dir or Path(scratch)) / "host-listing.log"
        with (
            running_host(settings, log_path) as host,
            httpx.Client(base_url=host.base_url, headers=headers, timeout=120) as client,
        ):
            small = time_pages(client, plan, plan.small)
            began = time.perf_counter()
            catalog.grow_to(plan.large)
            insert_large = time.perf_counter() - began
            large = time_pages(client, plan, plan.large)
        catalog.close()
    figure = Figure(
        key="listing_page_time",
        label=f"one page of {PAGE} models with {plan.large:,} in the catalog",
        unit="ms",
        value=large.median * 1000,
        baseline=small.median * 1000,
        baseline_label=f"with {plan.small:,}",
        target="<= 1.5",
        details={
            "baseline_is": f"the same request with {plan.small:,} public models, same run and host",
            "request": f"GET /api/v1.0/models?limit={PAGE}&continuation=<token from the middle of the list>",
            "measured_by": "median of sequential requests after a warm-up, through the local host",
            "caller_own_models": OWN_MODELS,
            "public_owners": PUBLIC_OWNERS,
            "small": small.describe(),
            "large": large.describe(),
            "insert_seconds": {"small": round(insert_small, 1), "large": round(insert_large, 1)},
        },
    )
    return [figure]
