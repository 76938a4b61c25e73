"""`registry register DIR --name N --version V`: upload a folder, register it, follow the copy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from registry.cli.session import Session, with_session
from registry.domain.vocabulary import DATA_TYPES, MODEL_TYPES

MIB = 1024 * 1024


def _rate(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    if value is None:
        return None
    from registry.cli.upload import parse_rate

    try:
        return parse_rate(value)
    except ValueError as problem:
        raise click.BadParameter(str(problem)) from None


@click.command("register")
@with_session
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--name", "-n", help="The model's name [model.yaml: name].")
@click.option("--version", "-v", "version", help="The model's version [model.yaml: version].")
@click.option(
    "--config-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The model's config and metainfo [default: DIR/model.yaml].",
)
@click.option("--type", "model_type", type=click.Choice(MODEL_TYPES), help="model_config.type")
@click.option("--description", help="model_config.description")
@click.option(
    "--public/--private", "public", default=None, help="Who sees it once finished [model.yaml, else private]."
)
@click.option("--entry-script", help="model_config.inference_properties.entry_script")
@click.option("--conda-env", help="model_config.inference_properties.conda_env")
@click.option("--docker-image", help="model_config.inference_properties.docker_image")
@click.option("--index-page", help="model_metainfo.index_page_file (a .md file of DIR)")
@click.option("--input-type", "input_types", multiple=True, type=click.Choice(DATA_TYPES), help="Repeatable.")
@click.option("--input-language", "input_languages", multiple=True, help="Repeatable.")
@click.option("--input-description")
@click.option(
    "--output-type", "output_types", multiple=True, type=click.Choice(DATA_TYPES), help="Repeatable."
)
@click.option("--output-language", "output_languages", multiple=True, help="Repeatable.")
@click.option("--output-description")
@click.option("--num-params", type=click.IntRange(min=1))
@click.option(
    "--set",
    "assignments",
    multiple=True,
    metavar="PATH=VALUE",
    help="Any other field, e.g. --set model_config.training_properties.entry_script=train.py",
)
@click.option(
    "--storage-account", help="Your storage account in Azure (your az login) [env REGISTRY_STORAGE_ACCOUNT]."
)
@click.option(
    "--storage-connection-string",
    help="Or a connection string with an account key [env REGISTRY_STORAGE_CONNECTION_STRING].",
)
@click.option("--container", help="The container to upload to [env REGISTRY_CONTAINER; default models].")
@click.option("--follow/--no-follow", default=True, help="Follow the copy to the end [default: follow].")
@click.option(
    "--block-size", type=click.IntRange(1, 4000), default=8, show_default=True, help="MiB per block."
)
@click.option(
    "--concurrency", type=click.IntRange(1, 64), default=8, show_default=True, help="Blocks in flight."
)
@click.option("--parallel-files", type=click.IntRange(1, 32), default=4, show_default=True)
@click.option(
    "--limit-rate", callback=_rate, metavar="RATE", help="Cap the upload, e.g. 20M (bytes a second)."
)
def register(  # noqa: PLR0913 - click passes every option as a parameter
    *,
    session: Session,
    folder: Path,
    name: str | None,
    version: str | None,
    config_file: Path | None,
    assignments: tuple[str, ...],
    storage_account: str | None,
    storage_connection_string: str | None,
    container: str | None,
    follow: bool,
    block_size: int,
    concurrency: int,
    parallel_files: int,
    limit_rate: float | None,
    public: bool | None,
    **flags: Any,
) -> int:
    """Upload FOLDER to your storage account and register it as model NAME VERSION.

    \b
    The model's config and metainfo come from FOLDER/model.yaml (the PUT body without
    model_files) and the flags. Every other file of FOLDER (hidden ones aside) is a model file,
    named by its path inside FOLDER. The body is checked before anything is uploaded; a re-run
    skips files already uploaded (same size and MD5) and resumes a file cut off mid-way.
    Ctrl-C while following stops following only: `registry status NAME VERSION --follow`.
    """
    from registry.cli.registering import RegisterRequest, register_folder
    from registry.cli.upload import UploadSettings

    session.flags.update(
        storage_account=storage_account,
        storage_connection_string=storage_connection_string,
        container=container,
    )
    flags["private"] = None if public is None else not public
    request = RegisterRequest(
        folder=folder,
        name=name,
        version=version,
        config_file=config_file,
        flags=flags,
        assignments=assignments,
        follow=follow,
        upload=UploadSettings(
            block_size=block_size * MIB,
            concurrency=concurrency,
            parallel_files=parallel_files,
            bytes_per_second=limit_rate,
        ),
    )
    return register_folder(session, request)


COMMANDS = [register]
