"""`python -m registry reseal`: re-seal every stored registration under the current sealing key.

After a key rotation (the new key in REGISTRY_SEALING_KEY, the old one in
REGISTRY_SEALING_PREVIOUS_KEYS), run this once; when it reports nothing unreadable, the old key
can be removed from REGISTRY_SEALING_PREVIOUS_KEYS. It reads the app settings like
`python -m registry bulk` (the environment, then local.settings.json).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from registry.bootstrap import build
from registry.bulk import load_app_settings
from registry.services.maintenance import reseal_all
from registry.settings import SettingsError


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m registry reseal", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--settings", type=Path, default=Path("local.settings.json"), help="app settings file"
    )
    args = parser.parse_args(argv)
    try:
        settings = load_app_settings(args.settings)
    except SettingsError as problem:
        print(f"settings: {problem}", file=sys.stderr)
        return 2
    report = reseal_all(build(settings))
    print(f"re-sealed {report.resealed} registration(s); {report.current} already under the current key")
    for key in report.unreadable or []:
        print(f"unreadable with every configured key: {key}", file=sys.stderr)
    return 0 if report.ok else 1
