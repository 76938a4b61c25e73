"""The worker copying one model in a fresh process, measuring its memory (run by bench.model_copy).

Reads a JSON spec on stdin ({"settings", "version", "files"}); prints one JSON line: Python's peak
traced allocations (tracemalloc) and the process's peak RSS (VmHWM), over the whole copy (to
Finished, verification included) and over its hashing phase alone.

The hashing phase is seen through bench.verification's proxies: just before the worker's first read
back of a file, the peaks so far are noted (the copy's) and both are reset (VmHWM to the current
RSS, by writing "5" to /proc/self/clear_refs); when the digest of the last file is recorded, the
peaks are those of the hashing phase, and are reset again for the rest (the manifest, Finished).
The whole copy's peak is the largest of the three.
"""

from __future__ import annotations

import contextlib
import gc
import json
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

from azure.storage.blob import ContainerClient

from bench.copying import copy_to_the_end, register_model
from bench.verification import Timeline, timed
from registry.bootstrap import build
from registry.settings import load_settings

MIB = 1024 * 1024


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _reset_peak_rss() -> bool:
    """Linux resets VmHWM to the current RSS when "5" is written to clear_refs."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")
        return True
    return False


class Peaks:
    """Peak RSS and traced allocations, phase by phase (each phase's peak read, then reset)."""

    def __init__(self) -> None:
        self.phases: dict[str, dict[str, Any]] = {}
        self.resets_worked = True
        self.began = time.perf_counter()
        self.rss_at_start = 0.0

    def start(self) -> None:
        self.began = time.perf_counter()
        self.rss_at_start = _status_kib("VmRSS") / 1024
        self.resets_worked &= _reset_peak_rss()
        tracemalloc.reset_peak()

    def end(self, phase: str) -> None:
        _, traced_peak = tracemalloc.get_traced_memory()
        self.phases[phase] = {
            "peak_rss_mib": _status_kib("VmHWM") / 1024,
            "rss_at_start_mib": self.rss_at_start,
            "traced_peak_mib": traced_peak / MIB,
            "seconds": time.perf_counter() - self.began,
        }


def main() -> int:
    spec = json.load(sys.stdin)
    deps = build(load_settings(spec["settings"]))
    registration = register_model(deps, spec["version"], spec["files"])
    files = len(spec["files"])
    peaks = Peaks()

    def hashing_starts() -> None:
        peaks.end("copy")
        peaks.start()

    def file_hashed(count: int) -> None:
        if count == files:
            peaks.end("hashing")
            peaks.start()

    timeline = Timeline(on_hashing_start=hashing_starts, on_file_hashed=file_hashed)
    gc.collect()
    tracemalloc.start()
    peaks.start()
    began = time.perf_counter()
    run = copy_to_the_end(timed(deps, timeline), registration)
    seconds = time.perf_counter() - began
    peaks.end("finishing")
    tracemalloc.stop()
    if set(peaks.phases) != {"copy", "hashing", "finishing"}:
        raise RuntimeError(f"the probe did not see the hashing phase: {sorted(peaks.phases)}")
    container = ContainerClient.from_connection_string(
        spec["settings"]["AzureWebJobsStorage"], deps.settings.models_container
    )
    sizes = {
        target: int(container.get_blob_client(registration.blob_path(target)).get_blob_properties().size)
        for target in spec["files"]
    }
    hashing = peaks.phases["hashing"]
    print(
        json.dumps(
            {
                "seconds": seconds,
                "invocations": run.invocations,
                # the whole copy, to Finished (as before the phases were told apart)
                "traced_peak_mib": max(p["traced_peak_mib"] for p in peaks.phases.values()),
                "rss_before_mib": peaks.phases["copy"]["rss_at_start_mib"],
                "peak_rss_mib": max(p["peak_rss_mib"] for p in peaks.phases.values()),
                "peak_rss_is_of_the_copy": peaks.resets_worked,
                # the hashing phase: the first read back to the last digest recorded
                "hash_peak_rss_mib": hashing["peak_rss_mib"],
                "rss_at_hash_start_mib": hashing["rss_at_start_mib"],
                "hash_traced_peak_mib": hashing["traced_peak_mib"],
                "hash_seconds": hashing["seconds"],
                "hashing_after_last_commit": timeline.hashing_after_last_commit,
                "phases": peaks.phases,
                "sizes": sizes,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
