"""`python -m registry ...`: the `registry` command line (`python -m registry bulk MANIFEST` included).

`bulk` runs without the CLI's libraries, as before the command line existed.
"""

import sys

if __name__ == "__main__":
    if sys.argv[1:2] == ["bulk"]:
        from registry import bulk

        sys.exit(bulk.main(sys.argv[2:]))
    from registry.cli import run

    run()
