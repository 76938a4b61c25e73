"""`registry register`'s work: check the body, upload the folder, mint links, PUT, follow.

Imported only when `register` runs (it brings in azure-storage-blob and the API's validation),
so that the other commands start quickly.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from azure.core.exceptions import AzureError

from registry.cli import links, modelspec
from registry.cli.errors import FAILED, INTERRUPTED, OK, CliError, UsageProblem
from registry.cli.follow import FINISHED, follow
from registry.cli.identity import DevIdentity
from registry.cli.output import CopyBars, Output, UploadBars, human_size
from registry.cli.session import Session
from registry.cli.storage import OwnerStorage, owner_storage
from registry.cli.upload import Cancelled, UploadReport, UploadSettings, upload_folder

LINK_START_SKEW = links.CLOCK_SKEW  # links valid a little before now: clocks differ


@dataclass(frozen=True)
class RegisterRequest:
    """What `registry register` was asked to do."""

    folder: Path
    name: str | None
    version: str | None
    config_file: Path | None
    flags: dict[str, Any]  # model.yaml fields set by flags (see modelspec.FLAG_PATHS)
    assignments: tuple[str, ...]  # --set PATH=VALUE
    follow: bool
    upload: UploadSettings = field(default_factory=UploadSettings)


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


def register_folder(session: Session, request: RegisterRequest) -> int:
    """Check, upload, link, register and (unless told not to) follow; returns the exit code."""
    output = session.output
    folder = request.folder
    config_path = request.config_file or folder / modelspec.MODEL_FILE
    document = modelspec.model_document(
        modelspec.read_model_yaml(config_path), request.flags, request.assignments
    )
    name = request.name or _text(document.get("name"))
    version = request.version or _text(document.get("version"))
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
    preview = modelspec.registration_body(
        document, {f.target: storage.blob_url(prefix + f.target) for f in files}
    )
    context = modelspec.check_context(
        name=name,
        version=version,
        owner=_owner_for_checks(session, document),
        source_host=storage.host,
        insecure_sources=storage.insecure,
    )
    problems = modelspec.check_body(preview, context)
    if problems:
        raise CliError(
            f"the registry would refuse {name} {version}; nothing was uploaded",
            f"fix these fields in {config_path} or with flags, then run the command again",
            FAILED,
            errors=[{"field": p.field, "rule": p.rule} for p in problems],
        )
    existing = session.api.find_status(name, version)  # also proves the API and the identity work
    try:
        report = _upload(output, storage, files, prefix, request.upload)
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
    if request.follow:
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
