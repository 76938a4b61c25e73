"""The `registry` command group, the options every command shares, and the exit codes.

Each module of `registry.cli.commands` adds its commands (its `COMMANDS` list), so a new
command (say, `download`) is one new module there.
"""

from __future__ import annotations

import importlib
import pkgutil

import click

from registry.cli import commands
from registry.cli.errors import INTERRUPTED, OK

EPILOG = """\b
Exit codes: 0 ok, 1 failed or refused, 2 usage, 3 not found (130: interrupted).
Settings: --api / REGISTRY_API, --as / REGISTRY_AS, --client-id / REGISTRY_CLIENT_ID, or the
config file ~/.config/registry/config.yaml (REGISTRY_CONFIG); after `make run`, the local stack.
"""


@click.group(
    name="registry",
    epilog=EPILOG,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110},
)
@click.version_option(package_name="model-registry", prog_name="registry")
def cli() -> None:
    """Register models from a folder, follow their copy, and find, publish or remove them."""


def install_commands(group: click.Group) -> None:
    for module_info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{commands.__name__}.{module_info.name}")
        for command in getattr(module, "COMMANDS", []):
            group.add_command(command)


install_commands(cli)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code."""
    try:
        result = cli.main(args=argv, prog_name="registry", standalone_mode=False)
    except click.exceptions.Exit as done:
        return done.exit_code
    except click.ClickException as problem:  # usage errors: 2
        problem.show()
        return problem.exit_code
    except click.exceptions.Abort:
        return INTERRUPTED
    except KeyboardInterrupt:
        return INTERRUPTED
    if isinstance(result, int):
        return result
    return OK
