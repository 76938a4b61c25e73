"""`registry`: the registry's command line for people (register a folder, follow, list, publish, ...).

It talks to the registry over its HTTP API and to the user's own storage account with
azure-storage-blob; it never needs the Functions runtime. Install it with `pip install .[cli]`.
"""

from __future__ import annotations

import sys


def run() -> None:
    """The console script's entry point."""
    try:
        from registry.cli.app import main
    except ImportError as missing:  # installed without the [cli] extra
        print(
            f"registry: the command line needs its libraries ({missing.name} is missing): "
            "pip install 'model-registry[cli]'",
            file=sys.stderr,
        )
        sys.exit(1)
    sys.exit(main())
