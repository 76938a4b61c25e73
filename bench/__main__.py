"""`python -m bench [--quick] [--only NAME]`: run the benchmarks (NAME: one of BENCHMARKS below).

Human lines first, one per figure; the last line of stdout is one JSON object with every figure,
its baseline, ratio and target.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence

from bench import bulk, catalog, cli_upload, download, listing, model_copy, registration
from bench.report import Figure, summary

Runner = Callable[[bool], Sequence[Figure]]
BENCHMARKS: dict[str, Runner] = {
    "registration": lambda quick: registration.run(
        registration.RegistrationPlan.quick() if quick else registration.RegistrationPlan()
    ),
    "copy": lambda quick: model_copy.run(model_copy.CopyPlan.quick() if quick else model_copy.CopyPlan()),
    "listing": lambda quick: listing.run(listing.ListingPlan.quick() if quick else listing.ListingPlan()),
    "bulk": lambda quick: bulk.run(bulk.BulkPlan.quick() if quick else bulk.BulkPlan()),
    "download": lambda quick: download.run(
        download.DownloadPlan.quick() if quick else download.DownloadPlan()
    ),
    "cli_upload": lambda quick: cli_upload.run(
        cli_upload.UploadPlan.quick() if quick else cli_upload.UploadPlan()
    ),
    "catalog": lambda quick: catalog.run(catalog.CatalogPlan.quick() if quick else catalog.CatalogPlan()),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="shrink everything: a smoke run")
    parser.add_argument("--only", choices=tuple(BENCHMARKS), help="run one benchmark")
    args = parser.parse_args(argv)
    began = time.monotonic()
    figures: list[Figure] = []
    seconds: dict[str, float] = {}
    for name, run in BENCHMARKS.items():
        if args.only not in (None, name):
            continue
        started = time.monotonic()
        for figure in run(args.quick):
            print(figure.line(), flush=True)
            figures.append(figure)
        seconds[name] = round(time.monotonic() - started, 1)
    elapsed = time.monotonic() - began
    print(f"benchmarks took {elapsed:.0f} s ({', '.join(f'{k} {v:.0f} s' for k, v in seconds.items())})")
    extra = {"quick": args.quick, "seconds": round(elapsed, 1), "seconds_per_benchmark": seconds}
    print(summary(figures, extra), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
