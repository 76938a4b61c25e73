"""`registry status NAME VERSION [--follow]`: where your registration of a model stands."""

from __future__ import annotations

from typing import Any

import click

from registry.cli.errors import FAILED, INTERRUPTED, OK
from registry.cli.follow import FINISHED, IN_PROGRESS, follow
from registry.cli.output import CopyBars, Output, human_size
from registry.cli.session import Session, with_session


def show_status(output: Output, status: dict[str, Any]) -> None:
    """The status as a person reads it: the state, then one row per file (extra fields shown if present)."""
    output.fields(
        [
            ("model", f"{status.get('name', '')} {status.get('version', '')}"),
            ("state", status.get("state")),
            ("message", status.get("message")),
            ("started", status.get("start_time")),
            ("updated", status.get("last_updated_time")),
        ]
    )
    files = [f for f in status.get("files") or [] if isinstance(f, dict)]
    extra = [key for key in ("phase", "sha256") if any(key in f for f in files)]
    rows = []
    for entry in files:
        size, copied = entry.get("size"), entry.get("bytes_copied") or 0
        percent = f"{100 * copied / size:.0f}%" if size else ""
        rows.append(
            [entry.get("name"), entry.get("state"), human_size(copied), human_size(size), percent]
            + [entry.get(key) for key in extra]
        )
    if rows:
        output.table(["FILE", "STATE", "COPIED", "SIZE", "%", *[k.upper() for k in extra]], rows)


def follow_status(session: Session, name: str, version: str, first: dict[str, Any]) -> dict[str, Any] | None:
    """Follow to the end with progress bars; None if the user pressed Ctrl-C."""
    try:
        with CopyBars(session.output) as bars:
            return follow(session.api, name, version, bars.show, first=first)
    except KeyboardInterrupt:
        session.output.note(
            f"stopped following; the copy goes on: `registry status {name} {version} --follow`"
        )
        return None


@click.command("status")
@with_session
@click.argument("name")
@click.argument("version")
@click.option("--follow", "-f", is_flag=True, help="Follow it until it is Finished or Failed.")
def status(*, session: Session, name: str, version: str, follow: bool) -> int:
    """Show your registration of NAME VERSION: its state and each file's copy.

    Exit code 1 if it Failed; 3 if you have no such registration.
    """
    current = session.api.status(name, version)
    if follow and current.get("state") == IN_PROGRESS:
        followed = follow_status(session, name, version, current)
        if followed is None:
            return INTERRUPTED
        current = followed
    if session.output.as_json:
        session.output.json(current)
    else:
        show_status(session.output, current)
    return FAILED if current.get("state") not in (FINISHED, IN_PROGRESS) else OK


COMMANDS = [status]
