"""Storage round-trips per accepted registration and per small-model copy, against the least a
design could need.

One in-memory Azurite; the registry's own `build(settings)`, every storage client on one counting
transport (bench/counting.py: each request sent, retries included, by service and operation).

- Registration: the register route's function in-process (`serve`, as in bench/registration.py),
  each time by an owner with no registration yet (the common case: one owner registering one
  model), and then by one owner registering several in a row. The least a registration needs:
  one Table insert and one enqueue (2).
- Copy: a small model (the three files every registration needs and a 4 KiB weights file) copied
  and verified by the worker (`process_job`, until it finishes). The least a copy needs: one read
  of the registration (its sealed sources), per file one server-side copy (Put Blob From URL) and
  one read of the copy to hash it, and one write of its end with the digests (2 x files + 2). The
  queue trigger's own receive and delete are not counted.
"""

from __future__ import annotations

import json
import os
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bench.copying import SMALL_FILES, copy_to_the_end, register_model, request_body
from bench.counting import CountingTransport, counted_build, services_of
from bench.processes import app_settings, running_azurite
from bench.registration import put_request, register_route
from bench.report import REPORT_ONLY, Figure
from bench.sources import OwnerContainer
from registry.blueprints.http import serve
from registry.services.dependencies import Dependencies
from registry.settings import load_settings

MODEL = "round-trips"
WEIGHT_BYTES = 4096


@dataclass(frozen=True)
class RoundTripPlan:
    lone: int = 20  # registrations, each by a new owner
    burst: int = 20  # registrations in a row by one owner
    copies: int = 3

    @classmethod
    def quick(cls) -> RoundTripPlan:
        return cls(lone=5, burst=10, copies=1)


@dataclass
class Counted:
    """Requests of each of a series of operations."""

    each: list[Counter[str]]

    @property
    def totals(self) -> list[int]:
        return [sum(c.values()) for c in self.each]

    @property
    def mean(self) -> float:
        return statistics.mean(self.totals)

    def describe(self) -> dict[str, Any]:
        operations: Counter[str] = Counter()
        for counts in self.each:
            operations.update(counts)
        return {
            "operations": len(self.each),
            "mean": round(self.mean, 3),
            "min": min(self.totals),
            "max": max(self.totals),
            "by_request": {k: round(v / len(self.each), 3) for k, v in sorted(operations.items())},
        }


def registrations(
    deps: Dependencies, transport: CountingTransport, owners: Sequence[str], body: bytes
) -> Counted:
    """One registration by each owner in turn (versions numbered by position), each counted."""
    route, each = register_route(), []
    for index, owner in enumerate(owners):
        with transport.counting() as taken:
            response = serve(put_request(owner, MODEL, f"1.{index}", body), route, deps)
        if response.status_code != 202:
            raise RuntimeError(f"registration answered {response.status_code}: {response.get_body()[:300]!r}")
        each.append(taken)
    return Counted(each)


def copies(deps: Dependencies, transport: CountingTransport, count: int, urls: dict[str, str]) -> Counted:
    each = []
    for index in range(count):
        registration = register_model(deps, f"9.{index}", urls)
        with transport.counting() as taken:
            copy_to_the_end(deps, registration)
        each.append(taken)
    return Counted(each)


def run(plan: RoundTripPlan) -> list[Figure]:
    with running_azurite(None) as azurite:
        settings = load_settings(app_settings(azurite.connection_string()))
        deps, transport = counted_build(settings, services_of(azurite))
        sources = OwnerContainer(azurite, "model-sources")
        files = {name: data for name, data in SMALL_FILES.items()} | {"weights.bin": os.urandom(WEIGHT_BYTES)}
        urls = {target: sources.upload_bytes(target, data).url for target, data in files.items()}
        body = json.dumps(request_body(urls)).encode()
        lone = registrations(deps, transport, [f"lone-{i:03d}" for i in range(plan.lone)], body)
        burst = registrations(deps, transport, ["burst-owner"] * plan.burst, body)
        copied = copies(deps, transport, plan.copies, urls)
    warm = Counted(burst.each[1:] or burst.each)
    least_copy = 2 * len(files) + 2
    return [
        Figure(
            key="registration_round_trips",
            label="storage round-trips per accepted registration (an owner's first)",
            unit="requests",
            value=lone.mean,
            baseline=2,
            baseline_label="least possible: insert + enqueue",
            target=REPORT_ONLY,
            digits=2,
            details={
                "measured": "requests sent by the registry's clients during serve() of the register "
                "route, each registration by a new owner",
                "lone": lone.describe(),
                "same_owner_after_its_first": warm.describe(),
                "note": "admission reads the owner's registrations in progress (at most every 2 s "
                "per owner, cached in the instance): an owner's first registration pays for it",
            },
        ),
        Figure(
            key="copy_round_trips",
            label=f"storage round-trips per small-model copy ({len(files)} files)",
            unit="requests",
            value=copied.mean,
            baseline=least_copy,
            baseline_label="least possible: read + copy and hash read per file + end",
            target=REPORT_ONLY,
            digits=1,
            details={
                "measured": "requests sent by the registry's clients while process_job ran to the "
                "end (queue trigger's receive/delete not included)",
                "model_bytes": sum(len(data) for data in files.values()),
                "least_is": f"{least_copy}: one read of the registration, per file one Put Blob From "
                "URL and one read of the copy to hash it, one write of its end with the digests",
                "copies": copied.describe(),
            },
        ),
    ]
