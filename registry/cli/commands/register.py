"""`registry register DIR --name N --version V`: upload a folder, register it, follow the copy."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click
from azure.core.exceptions import AzureError

from registry.cli import links, modelspec
from registry.cli.errors import FAILED, INTERRUPTED, OK, CliError, UsageProblem
from registry.cli.follow import FINISHED, follow
from registry.cli.identity import DevIdentity
from registry.cli.output import CopyBars, Output, UploadBars, human_size
from registry.cli.session import Session, with_session
from registry.cli.storage import OwnerStorage, owner_storage
from registry.cli.upload import MIB, Cancelled, UploadReport, UploadSettings, parse_rate, upload_folder

MODEL_TYPES = ("ENCODER", "DECODER", "SEQ2SEQ")
DATA_TYPES = ("SOURCE_CODE", "NATURAL_LANGUAGE", "CLASS_LABEL", "OTHER")
LINK_START_SKEW = timedelta(minutes=5)  # links valid a little before now: clocks differ


def _rate(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return parse_rate(value)
    except ValueError as problem:
        raise click.BadParameter(str(problem)) from None


def _owner_for_checks(session: Session, document: dict[str, Any]) -> tuple[str, str]:
    """(id, name) of the caller as far as known here; in Azure the registry checks `owner` itself."""
    identity = session.identity
    if isinstance(identity, DevIdentity):
        return identity.user, identity.user
    config = document.get("model_config")
    declared = str(config.get("owner", "")) if isinstance(config, dict) else ""
    return identity.principal_id() or "", declared


def _links(
    session: Session, storage: OwnerStorage, name: str, version: str, prefix: str, report: UploadReport
) -> tuple[dict[str, str], bool]:
    """Read-only links to every file: the ones an earlier run sent, if they still fit, else new ones."""
    store = links.LinkStore(links.state_dir(os.environ))
    key = links.links_key(
        session.api.root, session.identity.describe(), name, version, storage.container.url, prefix
    )
    current = {f.target: (f.size, f.content_md5) for f in report.files}
    now = datetime.now(UTC)
    saved = store.load(key)
    if saved is not None and saved.fits(current, now):
        return saved.urls(), True
    start = (now - LINK_START_SKEW).replace(microsecond=0)
    expiry = (now + links.link_lifetime(report.bytes_total)).replace(microsecond=0)
    signed = storage.read_links([prefix + target for target in current], start, expiry)
    urls = {target: signed[prefix + target] for target in current}
    entries = {t: {"url": urls[t], "size": s, "content_md5": m} for t, (s, m) in current.items()}
    store.save(key, links.SavedLinks(expiry, entries))
    return urls, False


def _upload(
    output: Output,
    storage: OwnerStorage,
    files: list[modelspec.LocalFile],
    prefix: str,
    settings: UploadSettings,
) -> UploadReport:
    storage.ensure_container()
    total = sum(f.size for f in files)
    if not output.as_json:
        output.note(f"uploading {len(files)} files ({human_size(total)}) to {storage.container.url}/{prefix}")
    with UploadBars(output, total, len(files)) as bars:
        report = upload_folder(files, storage.container, prefix, settings, bars)
    if not output.as_json:
        sent = len(report.names("uploaded")) + len(report.names("resumed"))
        output.note(
            f"uploaded {sent} files ({human_size(report.bytes_sent)} sent), "
            f"{len(report.names('skipped'))} already there, in {report.seconds:.1f} s"
        )
    return report


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
def register(
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
    output = session.output
    session.flags.update(
        storage_account=storage_account,
        storage_connection_string=storage_connection_string,
        container=container,
    )
    config_path = config_file or folder / modelspec.MODEL_FILE
    flags["private"] = None if public is None else not public
    document = modelspec.model_document(modelspec.read_model_yaml(config_path), flags, assignments)
    name = name or _text(document.get("name"))
    version = version or _text(document.get("version"))
    if not name or not version:
        raise UsageProblem(
            "the model needs a name and a version", "pass --name and --version (or set them in model.yaml)"
        )
    skip = {modelspec.MODEL_FILE}
    if config_path.resolve().is_relative_to(folder.resolve()):
        skip.add(config_path.resolve().relative_to(folder.resolve()).as_posix())
    files = modelspec.folder_files(folder, frozenset(skip))
    storage = owner_storage(session.config)
    prefix = f"{name}/{version}/"
    owner_id, owner_name = _owner_for_checks(session, document)
    preview = modelspec.registration_body(
        document, {f.target: storage.blob_url(prefix + f.target) for f in files}
    )
    problems = modelspec.check_body(
        preview,
        name=name,
        version=version,
        owner_id=owner_id,
        owner_name=owner_name,
        source_host=storage.host,
        insecure_sources=storage.insecure,
    )
    if problems:
        raise CliError(
            f"the registry would refuse {name} {version}; nothing was uploaded",
            f"fix these fields in {config_path} or with flags, then run the command again",
            FAILED,
            errors=[{"field": p.field, "rule": p.rule} for p in problems],
        )
    existing = session.api.find_status(name, version)  # also proves the API and the identity work
    settings = UploadSettings(
        block_size=block_size * MIB,
        concurrency=concurrency,
        parallel_files=parallel_files,
        bytes_per_second=limit_rate,
    )
    try:
        report = _upload(output, storage, files, prefix, settings)
        urls, reused = _links(session, storage, name, version, prefix, report)
    except (KeyboardInterrupt, Cancelled):
        output.note("upload interrupted: nothing was registered; run the same command again to resume it")
        return INTERRUPTED
    except AzureError as problem:
        raise storage_error(problem, storage) from None
    answer = _put(session, name, version, modelspec.registration_body(document, urls), reused)
    replay = existing is not None
    if not output.as_json:
        output.note(
            f"{name} {version} was already registered by you: the registry answered it as a replay"
            if replay
            else f"registration of {name} {version} accepted"
        )
    status: dict[str, Any] | None = None
    if follow:
        try:
            with CopyBars(output) as bars:
                status = _follow(session, name, version, bars)
        except KeyboardInterrupt:
            output.note(f"stopped following; the copy goes on: `registry status {name} {version} --follow`")
            return INTERRUPTED
    result = {
        "name": name,
        "version": version,
        "replay": replay,
        "upload": report.as_json(),
        "registration": answer,
        "status": status,
    }
    return _report(output, result, status)


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def storage_error(problem: AzureError, storage: OwnerStorage) -> CliError:
    """A storage failure as a next step; the first line of the service's message (it holds no SAS)."""
    reason = (getattr(problem, "message", None) or str(problem)).strip().splitlines()[0]
    return CliError(
        f"your storage ({storage.container.url}) refused or failed: {reason}",
        "check the account and container, and that your login may write blobs there (Storage Blob Data "
        "Contributor); nothing was registered, and a re-run resumes the upload",
    )


def _put(
    session: Session, name: str, version: str, body: dict[str, Any], reused_links: bool
) -> dict[str, Any]:
    try:
        return session.api.register(name, version, body)
    except CliError as problem:
        if problem.status == 409 and not reused_links:
            problem.hint = (
                "this version is already registered by you with other files or links (a re-run sends the "
                "same links only from the machine that first registered it): register a new --version, "
                "or remove "
                f"this one with `registry rm {name} {version}`"
            )
        raise


def _follow(session: Session, name: str, version: str, bars: CopyBars) -> dict[str, Any]:
    return follow(session.api, name, version, bars.show)


def _report(output: Output, result: dict[str, Any], status: dict[str, Any] | None) -> int:
    """The result; exit 1 if the registration failed (its JSON then shows the Failed status)."""
    model = f"{result['name']} {result['version']}"
    if output.as_json:
        output.json(result)
    elif status is None:
        output.line(f"registering {model}: follow it with `registry status {model} --follow`")
    elif status.get("state") == FINISHED:
        output.line(f"{model}: Finished (`registry show {model}`)")
    if status is None or status.get("state") == FINISHED:
        return OK
    if not output.as_json:
        output.error(
            CliError(
                f"{model} {status.get('state')}: {status.get('message', '')}",
                "fix the cause, then run the same command again: the registry restarts it "
                "and keeps finished files",
            )
        )
    return FAILED


COMMANDS = [register]
