"""The worker copying one model in a fresh process, measuring its memory (run by bench.model_copy).

Reads a JSON spec on stdin ({"settings", "version", "files"}); prints one JSON line: Python's peak
traced allocations during the copy (tracemalloc), and the process's peak RSS during it.
"""

from __future__ import annotations

import contextlib
import gc
import json
import sys
import time
import tracemalloc
from pathlib import Path

from azure.storage.blob import ContainerClient

from bench.copying import copy_to_the_end, register_model
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


def main() -> int:
    spec = json.load(sys.stdin)
    deps = build(load_settings(spec["settings"]))
    registration = register_model(deps, spec["version"], spec["files"])
    gc.collect()
    rss_before = _status_kib("VmRSS")
    hwm_reset = _reset_peak_rss()
    tracemalloc.start()
    began = time.perf_counter()
    run = copy_to_the_end(deps, registration)
    seconds = time.perf_counter() - began
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    container = ContainerClient.from_connection_string(
        spec["settings"]["AzureWebJobsStorage"], deps.settings.models_container
    )
    sizes = {
        target: int(container.get_blob_client(registration.blob_path(target)).get_blob_properties().size)
        for target in spec["files"]
    }
    print(
        json.dumps(
            {
                "seconds": seconds,
                "invocations": run.invocations,
                "traced_peak_mib": traced_peak / MIB,
                "rss_before_mib": rss_before / 1024,
                "peak_rss_mib": _status_kib("VmHWM") / 1024,
                "peak_rss_is_of_the_copy": hwm_reset,
                "sizes": sizes,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
