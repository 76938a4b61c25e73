"""`python -m bench [--quick] [--only registration|copy]`: run the benchmarks, print every figure.

The last line of stdout is one JSON object with every figure, its baseline, ratio and target.
"""

from __future__ import annotations

import argparse
import sys
import time

from bench import registration
from bench.report import Figure, summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="shrink everything: a smoke run")
    parser.add_argument("--only", choices=("registration", "copy"), help="run one benchmark")
    args = parser.parse_args(argv)
    began = time.monotonic()
    figures: list[Figure] = []
    if args.only in (None, "registration"):
        plan = registration.RegistrationPlan.quick() if args.quick else registration.RegistrationPlan()
        figure = registration.run(plan)
        print(figure.line(), flush=True)
        figures.append(figure)
    if args.only in (None, "copy"):
        pass
        for figure in []:
            print(figure.line(), flush=True)
            figures.append(figure)
    elapsed = time.monotonic() - began
    print(f"benchmarks took {elapsed:.0f} s", flush=True)
    print(summary(figures, {"quick": args.quick, "seconds": round(elapsed, 1)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
