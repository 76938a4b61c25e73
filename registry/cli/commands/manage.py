"""Changing your models: `registry publish`, `unpublish`, `rm` and `clone`."""

from __future__ import annotations

import sys
from typing import Any

import click

from registry.cli.commands.status import follow_status
from registry.cli.errors import FAILED, INTERRUPTED, OK, UsageProblem
from registry.cli.follow import FINISHED
from registry.cli.session import Session, with_session


def _set_private(session: Session, name: str, version: str, private: bool) -> None:
    answer = session.api.update(name, version, {"model_config": {"private": private}})
    if session.output.as_json:
        session.output.json(answer)
    elif private:
        session.output.line(f"{name} {version} is private: only you see it")
    else:
        session.output.line(f"{name} {version} is public: everyone sees it once it is finished")


@click.command("publish")
@with_session
@click.argument("name")
@click.argument("version")
def publish(*, session: Session, name: str, version: str) -> None:
    """Make your model NAME VERSION visible to everyone."""
    _set_private(session, name, version, False)


@click.command("unpublish")
@with_session
@click.argument("name")
@click.argument("version")
def unpublish(*, session: Session, name: str, version: str) -> None:
    """Make your model NAME VERSION private again: only you see it."""
    _set_private(session, name, version, True)


@click.command("rm")
@with_session
@click.argument("name")
@click.argument("version")
@click.option("--yes", "-y", is_flag=True, help="Do not ask first.")
def rm(*, session: Session, name: str, version: str, yes: bool) -> None:
    """Delete your model NAME VERSION: its listing, records and files (a copy in flight stops)."""
    if not yes:
        if not sys.stdin.isatty():
            raise UsageProblem(
                f"rm deletes {name} {version} for good and asks first", "pass --yes to delete without asking"
            )
        click.confirm(f"Delete your model {name} {version} and its files?", abort=True, err=True)
    answer = session.api.delete(name, version)
    if session.output.as_json:
        session.output.json(answer)
    else:
        session.output.line(f"deleted {name} {version}")


@click.command("clone")
@with_session
@click.argument("name")
@click.argument("version")
@click.argument("owner")
@click.option("--as-name", help="The new model's name (the registry clones within a name: NAME).")
@click.option("--version", "new_version", required=True, help="The new model's version.")
@click.option(
    "--ignore",
    "ignore_files",
    multiple=True,
    metavar="FILE",
    help="A file of the parent to leave out (repeatable).",
)
@click.option("--description", help="The new model's description.")
@click.option("--public/--private", "public", default=None, help="[default: private]")
@click.option("--follow/--no-follow", default=True, help="Follow the copy to the end [default: follow].")
def clone(  # noqa: PLR0913 - click passes every option as a parameter
    *,
    session: Session,
    name: str,
    version: str,
    owner: str,
    as_name: str | None,
    new_version: str,
    ignore_files: tuple[str, ...],
    description: str | None,
    public: bool | None,
    follow: bool,
) -> int:
    """Make model NAME VERSION of OWNER (one you may see) a new model of yours, copied in the registry."""
    if as_name and as_name != name:
        raise UsageProblem(
            f"the registry clones a model under its own name: --as-name {as_name} differs from {name}",
            f"leave --as-name out (the clone is {name} {new_version}), or register a copy under the new name",
        )
    body: dict[str, Any] = {"parent_version": version, "parent_owner": owner}
    if ignore_files:
        body["ignore_files"] = list(ignore_files)
    overrides: dict[str, Any] = {}
    if description is not None:
        overrides["description"] = description
    if public is not None:
        overrides["private"] = not public
    if overrides:
        body["model_config"] = overrides
    answer = session.api.clone(name, new_version, body)
    status = None
    if follow:
        status = follow_status(session, name, new_version, session.api.status(name, new_version))
        if status is None:
            return INTERRUPTED
    if session.output.as_json:
        session.output.json({"name": name, "version": new_version, "registration": answer, "status": status})
    elif status is None:
        session.output.line(
            f"cloning into {name} {new_version}: `registry status {name} {new_version} --follow`"
        )
    else:
        session.output.line(f"{name} {new_version}: {status.get('state')} {status.get('message', '')}")
    return OK if status is None or status.get("state") == FINISHED else FAILED


COMMANDS = [publish, unpublish, rm, clone]
