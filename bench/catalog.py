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
from typing import Any

import azure.functions as func
from azure.storage.blob import BlobServiceClient

from bench.listing import CALLER, OWN_MODELS, Catalog, make_templates
from bench.processes import WORKER_DISABLED, app_settings, running_azurite
from bench.report import REPORT_ONLY, Figure
from bench.sources import OwnerContainer
from registry.blueprints import models_api
from registry.bootstrap import dependencies
from registry.settings import current_settings
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


def median_ms(call: Callable[[], func.HttpResponse], plan: CatalogPlan) -> tuple[float, list[float]]:
    for _ in range(plan.warmup):
        call()
    times = []
    for _ in range(plan.requests):
        began = time.perf_counter()
        response = call()
        times.append((time.perf_counter() - began) * 1000)
        if response.status_code != 200:
            raise RuntimeError(f"answered {response.status_code}: {response.get_body()[:300]!r}")
    return statistics.median(times), times


def models_page(plan: CatalogPlan, core: web_core.Core) -> tuple[float, dict[str, Any]]:
    loads = core.cache.loads
    req = request("http://127.0.0.1/api/catalog/models")
    value, times = median_ms(lambda: views.catalog_models(req), plan)
    views_timed = plan.warmup + plan.requests
    return value, {
        "median_ms": round(value, 2),
        "min_ms": round(min(times), 2),
        "max_ms": round(max(times), 2),
        "listing_chunk_reads_per_view": round((core.cache.loads - loads) / views_timed, 3),
    }


def run(plan: CatalogPlan) -> list[Figure]:
    with running_azurite(None) as azurite:
        # The API's functions read the process's settings: this process is the app for the run.
        saved = dict(os.environ)
        os.environ.update(app_settings(azurite.connection_string(), **WORKER_DISABLED))
        current_settings.cache_clear()
        dependencies.cache_clear()
        deps = dependencies()
        settings = deps.settings
        catalog = Catalog(deps, make_templates(deps, OwnerContainer(azurite, "model-sources")))
        blobs = BlobServiceClient.from_connection_string(str(settings.storage_connection_string))
        blobs.get_blob_client(settings.models_container, "template-owner/template/1.0/index.md").upload_blob(
            INDEX.encode(), overwrite=True
        )
        cold = web_core.Core(deps, PublicListingCache(ttl_seconds=0))
        warm = web_core.Core(deps, PublicListingCache(ttl_seconds=web_core.LISTING_CACHE_SECONDS))
        previous = web_core._core
        try:
            catalog.add_own(OWN_MODELS, plan.small)
            catalog.grow_to(plan.small)
            web_core._core = cold
            small_cold, small_details = models_page(plan, cold)
            catalog.grow_to(plan.large)
            large_cold, large_details = models_page(plan, cold)
            web_core._core = warm
            large_warm, warm_details = models_page(plan, warm)

            route = {"name": "template", "version": "1.0", "owner": "template-owner"}
            url = "http://127.0.0.1/api/catalog/model/template/1.0/template-owner"
            page_ms, _ = median_ms(lambda: views.catalog_model(request(url, route)), plan)
            api_url = "http://127.0.0.1/api/v1.0/model/template/1.0/template-owner"
            json_ms, _ = median_ms(lambda: models_api.get_model(request(api_url, route)), plan)
        finally:
            web_core._core = previous
            catalog.close()
            os.environ.clear()
            os.environ.update(saved)
            current_settings.cache_clear()
            dependencies.cache_clear()
    return [
        Figure(
            key="catalog_models_page_time",
            label=f"the models page (first page) with {plan.large:,} models, listing cache off",
            unit="ms",
            value=large_cold,
            baseline=small_cold,
            baseline_label=f"with {plan.small:,}",
            target="<= 1.5",
            details={
                "measured_by": "server time of GET /api/catalog/models in process, median after a warm-up",
                "small": small_details,
                "large": large_details,
            },
        ),
        Figure(
            key="catalog_models_page_cached",
            label=f"the models page with {plan.large:,} models, listing cache on",
            unit="ms",
            value=large_warm,
            baseline=large_cold,
            baseline_label="cache off",
            target=REPORT_ONLY,
            details={"cached": warm_details, "ttl_seconds": web_core.LISTING_CACHE_SECONDS},
        ),
        Figure(
            key="catalog_model_page_time",
            label="a model's page (index.md rendered and sanitized, files, lineage)",
            unit="ms",
            value=page_ms,
            baseline=json_ms,
            baseline_label="its JSON GET",
            target=REPORT_ONLY,
            details={"measured_by": "server time in process, median after a warm-up"},
        ),
    ]
