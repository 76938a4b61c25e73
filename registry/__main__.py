"""`python -m registry ...`: the `registry` command line, plus the app's own tools, which run without
the CLI's libraries as before: `python -m registry bulk MANIFEST [--wait]` (also `registry bulk`),
and `python -m registry reseal` (after a sealing-key rotation)."""

import sys

if __name__ == "__main__":
    if sys.argv[1:2] == ["bulk"]:
        from registry import bulk

        sys.exit(bulk.main(sys.argv[2:]))
    if sys.argv[1:2] == ["reseal"]:
        from registry import reseal

        sys.exit(reseal.main(sys.argv[2:]))
    from registry.cli import run

    run()
