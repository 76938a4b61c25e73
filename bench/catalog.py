"""The web catalog's server time: the models page with 1,000 and with 20,000 models, and a model's
page against the JSON GET of the same model.

In process: the HTTP functions of `registry/web/views.py` and `registry/blueprints/models_api.py`
are called with `func.HttpRequest`s, on the adapters of a real (in-memory) Azurite, so what is
timed is the server's own work: identity, the service calls with their table reads, rendering.
The catalog is seeded as bench/listing.py seeds it (batch transactions of the entities the
registry writes), and grows from the small to the large size in the same run.

The models page is timed twice: with the per-instance listing cache off (TTL 0: every view reads
the public partition, the cost the 1.5x target is about) and on (the TTL the app uses; the table
reads it saves are counted).
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import azure.functions as func

from bench.copying import SMALL_FILES
from bench.listing import CALLER, OWN_MODELS, Catalog, make_templates, model_name, public_owner
from bench.processes import WORKER_DISABLED, app_settings, running_azurite
from bench.report import REPORT_ONLY, Figure
from bench.sources import OwnerContainer
from devhost.azurite import Azurite
from registry.blueprints import models_api
from registry.blueprints.http import serve
from registry.bootstrap import build, dependencies
from registry.services.dependencies import Dependencies
from registry.settings import current_settings, load_settings
from registry.web import core as web_core
from registry.web import views
from registry.web.cache import PublicListingCache

HEADERS = {"X-MS-CLIENT-PRINCIPAL-ID": CALLER.id, "X-MS-CLIENT-PRINCIPAL-NAME": CALLER.name}
INDEX = (
    "# Template model\n\nA model card with a table and code.\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n"
    "```python\nprint('hello')\n```\n" + "Some more text about the model. " * 60
)


@dataclass(frozen=True)
class CatalogPlan:
    small: int = 1_000
    large: int = 20_000
    warmup: int = 5
    requests: int = 40

    @classmethod
    def quick(cls) -> CatalogPlan:
        return cls(small=500, large=3_000, warmup=3, requests=10)


def request(url: str, route: dict[str, str] | None = None) -> func.HttpRequest:
    return func.HttpRequest("GET", url, headers=HEADERS, params={}, route_params=route or {}, body=b"")


def timed(call: Callable[[], func.HttpResponse]) -> float:
    began = time.perf_counter()
    response = call()
    elapsed = (time.perf_counter() - began) * 1000
    if response.status_code != 200:
        raise RuntimeError(f"answered {response.status_code}: {response.get_body()[:300]!r}")
    return elapsed


def interleaved(
    calls: dict[str, Callable[[], func.HttpResponse]], plan: CatalogPlan
) -> dict[str, list[float]]:
    """Each call in turn, round after round: drift in the machine's load favours none of them."""
    for _ in range(plan.warmup):
        for call in calls.values():
            call()
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(plan.requests):
        for name, call in calls.items():
            times[name].append(timed(call))
    return times


def describe(times: list[float]) -> dict[str, float]:
    return {
        "median_ms": round(statistics.median(times), 2),
        "min_ms": round(min(times), 2),
        "max_ms": round(max(times), 2),
    }


def on(
    core: web_core.Core, view: Callable[[func.HttpRequest], func.HttpResponse], req: func.HttpRequest
) -> Callable[[], func.HttpResponse]:
    def call() -> func.HttpResponse:
        web_core._core = core
        return view(req)

    return call


def public_query(deps: Dependencies) -> Callable[[], func.HttpResponse]:
    """The public partition's query alone, for a page (the part of the page that grows)."""

    def call() -> func.HttpResponse:
        rows = deps.store.public_models("", web_core.model_filter(), CALLER.id, page_size=21)
        for _, _row in zip(range(21), rows, strict=False):
            pass
        return func.HttpResponse(status_code=200)

    return call


def registry_settings(azurite: Azurite, size: str) -> dict[str, str]:
    """App settings of one registry: its own tables, so that both sizes exist at once."""
    tables = {
        "REGISTRY_REGISTRATIONS_TABLE": f"registrations{size}",
        "REGISTRY_FILES_TABLE": f"files{size}",
        "REGISTRY_CATALOG_TABLE": f"catalog{size}",
        "REGISTRY_CHANGES_TABLE": f"changes{size}",
        "REGISTRY_MODELS_CONTAINER": f"models{size}",
        "REGISTRY_RATE_LIMITS": "off",
    }
    return app_settings(azurite.connection_string(), **WORKER_DISABLED, **tables)


def seeded(azurite: Azurite, size: str, count: int) -> tuple[Dependencies, dict[str, str]]:
    env = registry_settings(azurite, size)
    deps = build(load_settings(env))
    files = {**SMALL_FILES, "index.md": INDEX.encode()}
    catalog = Catalog(deps, make_templates(deps, OwnerContainer(azurite, f"model-sources-{size}"), files))
    catalog.add_own(OWN_MODELS, count)
    # Lists read only the public catalog's rows (and the caller's own partition): the public
    # models' registration records, which only their own pages read, are left out (at 20,000
    # they would hold the in-memory emulator's whole memory for nothing this measures).
    t = catalog.templates
    rows = [t.catalog_row(public_owner(i), model_name(i), "1.0") for i in range(count)]
    catalog.submit(catalog.catalog_table, rows)
    return deps, env


def run(plan: CatalogPlan) -> list[Figure]:
    saved = dict(os.environ)
    previous = web_core._core
    try:
        with running_azurite(None) as azurite:
            small, _ = seeded(azurite, "small", plan.small)
            large, large_env = seeded(azurite, "large", plan.large)
            small_cold = web_core.Core(small, PublicListingCache(ttl_seconds=0))
            large_cold = web_core.Core(large, PublicListingCache(ttl_seconds=0))
            ttl = web_core.LISTING_CACHE_SECONDS
            small_warm = web_core.Core(small, PublicListingCache(ttl_seconds=ttl))
            large_warm = web_core.Core(large, PublicListingCache(ttl_seconds=ttl))
            models = request("http://127.0.0.1/api/catalog/models")
            pages = interleaved(
                {
                    "small": on(small_cold, views.catalog_models, models),
                    "large": on(large_cold, views.catalog_models, models),
                    "small_cached": on(small_warm, views.catalog_models, models),
                    "cached": on(large_warm, views.catalog_models, models),
                },
                plan,
            )
            views_timed = plan.warmup + plan.requests
            chunk_reads = large_warm.cache.loads / views_timed
            queries = interleaved({"small": public_query(small), "large": public_query(large)}, plan)

            # The API's functions read the process's settings: this process is the large registry's app.
            os.environ.update(large_env)
            current_settings.cache_clear()
            dependencies.cache_clear()
            get_model = next(r for r in models_api.api.routes if r.operation_id == "get_model")
            route = {"name": "template", "version": "1.0", "owner": "template-owner"}
            page_req = request("http://127.0.0.1/api/catalog/model/template/1.0/template-owner", route)
            api_req = request("http://127.0.0.1/api/v1.0/model/template/1.0/template-owner", route)
            model = interleaved(
                {
                    "page": on(large_cold, views.catalog_model, page_req),
                    "json": lambda: serve(api_req, get_model),
                },
                plan,
            )
    finally:
        web_core._core = previous
        os.environ.clear()
        os.environ.update(saved)
        current_settings.cache_clear()
        dependencies.cache_clear()
    small_ms, large_ms = statistics.median(pages["small"]), statistics.median(pages["large"])
    cached_ms, small_cached_ms = statistics.median(pages["cached"]), statistics.median(pages["small_cached"])
    page_ms, json_ms = statistics.median(model["page"]), statistics.median(model["json"])
    return [
        Figure(
            key="catalog_models_page_time",
            label=f"the models page (first page) with {plan.large:,} models, listing cache off",
            unit="ms",
            value=large_ms,
            baseline=small_ms,
            baseline_label=f"with {plan.small:,}",
            target="<= 1.5",
            details={
                "measured_by": "server time of GET /api/catalog/models in process, median after a warm-up;"
                " the two sizes are separate registries on one emulator, timed in turn",
                "small": describe(pages["small"]),
                "large": describe(pages["large"]),
                "public_query_ms": {k: describe(v)["median_ms"] for k, v in queries.items()},
                "why_it_grows": "the emulator evaluates the public query over the whole partition; Azure"
                " seeks the key range and stops after the page (see docs/catalog-scale.md)",
            },
        ),
        Figure(
            key="catalog_models_page_cached",
            label=f"the models page as served (listing cache on) with {plan.large:,} models",
            unit="ms",
            value=cached_ms,
            baseline=small_cached_ms,
            baseline_label=f"with {plan.small:,}",
            target="<= 1.5",
            details={
                "cached": describe(pages["cached"]),
                "small_cached": describe(pages["small_cached"]),
                "cache_on_vs_off_with_large": round(cached_ms / large_ms, 3),
                "ttl_seconds": web_core.LISTING_CACHE_SECONDS,
                "listing_chunk_reads_per_view": round(chunk_reads, 3),
            },
        ),
        Figure(
            key="catalog_model_page_time",
            label="a model's page (index.md rendered and sanitized, files, manifests, history, lineage)",
            unit="ms",
            value=page_ms,
            baseline=json_ms,
            baseline_label="its JSON GET",
            target=REPORT_ONLY,
            details={
                "measured_by": "server time in process, median after a warm-up, timed in turn",
                "page": describe(model["page"]),
                "json": describe(model["json"]),
            },
        ),
    ]
