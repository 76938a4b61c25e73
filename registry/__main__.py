"""Command-line tools of the registry: `python -m registry bulk MANIFEST [--wait]`,
`python -m registry reseal` (after a sealing-key rotation), and `python -m registry download NAME
VERSION OWNER --dir DIR` / `python -m registry verify DIR` (verified, resumable downloads)."""

import sys

from registry import bulk, download, reseal

COMMANDS = {
    "bulk": bulk.main,
    "reseal": reseal.main,
    "download": download.download_main,
    "verify": download.verify_main,
}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        print(f"usage: python -m registry {{{','.join(COMMANDS)}}} ...", file=sys.stderr)
        sys.exit(2)
    sys.exit(COMMANDS[sys.argv[1]](sys.argv[2:]))
