"""`python -m registry ...`: the `registry` command line, and the tools that run with the app's own
requirements and without the CLI's libraries: `python -m registry bulk MANIFEST [--wait]` (also
`registry bulk`), `python -m registry reseal` (after a sealing-key rotation), and
`python -m registry download NAME VERSION OWNER --dir DIR` / `python -m registry verify DIR`
(verified, resumable downloads)."""

import importlib
import sys

TOOLS = {
    "bulk": ("registry.bulk", "main"),
    "reseal": ("registry.reseal", "main"),
    "download": ("registry.download", "download_main"),
    "verify": ("registry.download", "verify_main"),
}

if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] in TOOLS:
        module, function = TOOLS[sys.argv[1]]
        sys.exit(getattr(importlib.import_module(module), function)(sys.argv[2:]))
    from registry.cli import run

    run()
