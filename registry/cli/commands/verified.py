"""`registry download NAME VERSION [OWNER] --dir DIR` and `registry verify DIR`: verified, resumable
downloads (`registry.download`), with the CLI's settings and identity."""

from __future__ import annotations

from pathlib import Path

import click

from registry.cli.session import Session, with_session


def _identity_args(session: Session) -> list[str]:
    config = session.config
    args = ["--api", config.api] if config.api else []
    if config.as_user:
        args += ["--as", config.as_user]
    elif config.client_id:
        args += ["--client-id", config.client_id]
    return args


@click.command("download")
@with_session
@click.argument("name")
@click.argument("version")
@click.argument("owner", required=False)
@click.option(
    "--dir", "directory", required=True, type=click.Path(path_type=Path), help="Where the files go."
)
@click.option("--revision", type=int, help="A manifest revision (default: the current one).")
@click.option("--parallel", type=int, default=4, show_default=True, help="Files downloaded at once.")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
def download(  # noqa: PLR0913 - click passes every option as a parameter
    *,
    session: Session,
    name: str,
    version: str,
    owner: str | None,
    directory: Path,
    revision: int | None,
    parallel: int,
    no_progress: bool,
) -> int:
    """Download a model, checking its signed manifest and every file's SHA-256 (resumable).

    OWNER defaults to you. Writes model.sig and registry-manifest.json beside the files, so that
    `registry verify DIR` (or model-signing's own verifier) can check the directory again.
    Exit code 1 names the files that do not match; 2 if the registry cannot be reached or refuses.
    """
    from registry.download import download_main

    args = [name, version, owner or session.me(), "--dir", str(directory), "--parallel", str(parallel)]
    args += ["--revision", str(revision)] if revision is not None else []
    args += ["--no-progress"] if no_progress else []
    return download_main(args + _identity_args(session))


@click.command("verify")
@with_session
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--public-key", type=click.Path(exists=True, path_type=Path), help="Check with this PEM key.")
@click.option("--offline", is_flag=True, help="Check with the key recorded at download time.")
def verify(*, session: Session, directory: Path, public_key: Path | None, offline: bool) -> int:
    """Check a downloaded model again: its signature, and every file's SHA-256.

    Against the registry's published keys by default; exit code 1 names what differs.
    """
    from registry.download import verify_main

    args = [str(directory)]
    if public_key is not None:
        args += ["--public-key", str(public_key)]
    elif offline:
        args += ["--offline"]
    else:
        args += _identity_args(session)
    return verify_main(args)


COMMANDS = [download, verify]
