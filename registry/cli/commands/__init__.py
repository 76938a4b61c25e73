"""The CLI's commands: each module here lists its click commands in `COMMANDS`.

`registry.cli.app` adds every module's commands to the `registry` group, so a new command is
one new module (for example `download.py` with `COMMANDS = [download, verify]`).
"""
