"""A command's connection to the registry, and the options every command shares."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import click

from registry.cli import config
from registry.cli.api import RegistryApi
from registry.cli.errors import INTERRUPTED, OK, CliError, UsageProblem
from registry.cli.identity import Identity, identity_for
from registry.cli.output import Output


@dataclass
class Session:
    """One command's connection to the registry, built from its flags on first use."""

    flags: dict[str, str | None]
    output: Output
    _config: config.Config | None = None
    _identity: Identity | None = None
    _api: RegistryApi | None = None
    closers: list[Callable[[], None]] = field(default_factory=list)

    @property
    def config(self) -> config.Config:
        if self._config is None:
            self._config = config.load(self.flags)
        return self._config

    @property
    def identity(self) -> Identity:
        if self._identity is None:
            self._identity = identity_for(self.config)
        return self._identity

    @property
    def api(self) -> RegistryApi:
        if self._api is None:
            if not self.config.api:
                raise UsageProblem(
                    "where is the registry? No API URL was given",
                    "pass --api URL or set REGISTRY_API (the local stack: `make run` in this checkout)",
                )
            self._api = RegistryApi(self.config.api, self.identity)
            self.closers.append(self._api.close)
        return self._api

    def me(self) -> str:
        """The caller's principal id, for `--mine` and a missing OWNER."""
        principal = self.identity.principal_id()
        if not principal:
            raise UsageProblem(
                "who are you? No identity is configured", "pass --as USER (local) or --client-id (Azure)"
            )
        return principal

    def close(self) -> None:
        for close in self.closers:
            close()


Command = Callable[..., int | None]


def with_session(command: Command) -> Command:
    """Adds --api, --as, --client-id and --json, and passes the command a Session as `session`."""

    @functools.wraps(command)
    def wrapper(
        *args: Any, api: str | None, as_user: str | None, client_id: str | None, as_json: bool, **kwargs: Any
    ) -> int:
        session = Session({"api": api, "as": as_user, "client_id": client_id}, Output(as_json))
        try:
            return command(*args, session=session, **kwargs) or OK
        except CliError as problem:
            session.output.error(problem)
            raise click.exceptions.Exit(problem.code) from None
        except KeyboardInterrupt:
            session.output.note("interrupted: nothing was cancelled")
            raise click.exceptions.Exit(INTERRUPTED) from None
        finally:
            session.close()

    options = [
        click.option("--json", "as_json", is_flag=True, help="Print JSON (for scripts) instead of tables."),
        click.option(
            "--client-id", metavar="ID", help="The registry's app registration (Azure login token)."
        ),
        click.option(
            "--as", "as_user", metavar="USER", help="Call as USER (a registry in dev mode, e.g. make run)."
        ),
        click.option("--api", metavar="URL", help="The registry's base URL [env REGISTRY_API]."),
    ]
    decorated: Command = wrapper
    for option in options:
        decorated = option(decorated)
    return decorated
