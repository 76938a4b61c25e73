"""`registry bulk MANIFEST [--wait]`: the queue-driven bulk registration (`registry.bulk.main`)."""

from __future__ import annotations

import click

from registry.cli.errors import FAILED


@click.command(
    "bulk",
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True, "help_option_names": []},
    add_help_option=False,
)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def bulk(args: tuple[str, ...]) -> int:
    """Register many models through the job queue (`registry bulk --help` for its options).

    It talks to the registry's own storage with the app's settings, so it needs the app's
    requirements (requirements.txt) besides the CLI's.
    """
    try:
        from registry import bulk as bulk_registration
    except ImportError as missing:
        click.echo(
            f"registry bulk needs the app's requirements ({missing.name} is missing): "
            "pip install -r requirements.txt",
            err=True,
        )
        return FAILED
    try:
        return bulk_registration.main(list(args))
    except SystemExit as done:  # argparse: --help, or a usage error (2)
        return done.code if isinstance(done.code, int) else FAILED


COMMANDS = [bulk]
