"""Finding and reading models: `registry ls`, `registry show`, `registry open`."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import click

from registry.cli.errors import CliError
from registry.cli.output import human_size
from registry.cli.session import Session, with_session
from registry.domain.vocabulary import DATA_TYPES, MODEL_TYPES

MAX_PAGE = 1000


def list_all(session: Session, filters: dict[str, str], limit: int | None) -> list[dict[str, Any]]:
    """Pages of GET /models until `limit` models (None: all of them)."""
    found: list[dict[str, Any]] = []
    continuation: str | None = None
    while limit is None or len(found) < limit:
        page_size = MAX_PAGE if limit is None else min(MAX_PAGE, limit - len(found))
        page = session.api.models(filters, page_size, continuation)
        found.extend(page.get("models") or [])
        continuation = page.get("continuation")
        if not continuation:
            break
    return found


@click.command("ls")
@with_session
@click.option("--mine", is_flag=True, help="Only your models (private ones included).")
@click.option("--name")
@click.option("--version", "version")
@click.option("--owner", help="The owner's principal id.")
@click.option("--type", "model_type", type=click.Choice(MODEL_TYPES))
@click.option("--trainable/--not-trainable", default=None)
@click.option("--input-type", type=click.Choice(DATA_TYPES))
@click.option("--output-type", type=click.Choice(DATA_TYPES))
@click.option("--language")
@click.option(
    "--limit", type=click.IntRange(min=1), default=100, show_default=True, help="Show at most this many."
)
@click.option("--all", "everything", is_flag=True, help="Every model, however many (ignores --limit).")
def ls(
    *,
    session: Session,
    mine: bool,
    model_type: str | None,
    trainable: bool | None,
    limit: int,
    everything: bool,
    **filters: str | None,
) -> None:
    """List the models you may see: every finished public model, and all of yours."""
    query = {key: value for key, value in filters.items() if value}
    if model_type:
        query["type"] = model_type
    if trainable is not None:
        query["trainable"] = "true" if trainable else "false"
    if mine:
        query["owner"] = session.me()
    models = list_all(session, query, None if everything else limit)
    if session.output.as_json:
        session.output.json(models)
        return
    session.output.table(
        ["NAME", "VERSION", "OWNER", "TYPE", "STATE", "VISIBILITY", "DESCRIPTION"],
        (
            [
                m.get("name"),
                m.get("version"),
                m.get("owner_name") or m.get("owner"),
                m.get("type"),
                m.get("state"),
                "private" if m.get("private") else "public",
                _short(str(m.get("description") or "")),
            ]
            for m in models
        ),
    )
    if not models:
        session.output.note("no models" + (" of yours" if mine else " you may see match"))


def _short(text: str, width: int = 48) -> str:
    line = text.splitlines()[0] if text else ""
    return line if len(line) <= width else line[: width - 1] + "…"


@click.command("show")
@with_session
@click.argument("name")
@click.argument("version")
@click.argument("owner", required=False)
def show(*, session: Session, name: str, version: str, owner: str | None) -> None:
    """Show model NAME VERSION of OWNER (default: yours): its config, metainfo and files."""
    model = session.api.model(name, version, owner or session.me())
    output = session.output
    if output.as_json:
        output.json(model)
        return
    config, meta = model.get("model_config") or {}, model.get("model_metainfo") or {}
    parent = model.get("parent_model")
    output.fields(
        [
            ("model", f"{model.get('name')} {model.get('version')}"),
            ("owner", model.get("owner_name") or model.get("owner")),
            ("state", model.get("state")),
            ("visibility", "private" if model.get("private") else "public"),
            ("type", model.get("type")),
            ("description", model.get("description")),
            ("entry script", (config.get("inference_properties") or {}).get("entry_script")),
            ("inputs", ", ".join(meta.get("input_types") or [])),
            ("outputs", ", ".join(meta.get("output_types") or [])),
            ("parameters", meta.get("num_params")),
            ("index page", meta.get("index_page_file")),
            (
                "cloned from",
                f"{parent.get('name')} {parent.get('version')} of {parent.get('owner')}" if parent else None,
            ),
            ("created", model.get("created_at")),
            ("updated", model.get("updated_at")),
        ]
    )
    # The registry's SHA-256 of the bytes it serves (issue 10); none until the file is hashed. The
    # source's Content-MD5 is the owner's claim, not the registry's: only --json carries it.
    files = [f for f in model.get("files") or [] if isinstance(f, dict)]
    output.table(
        ["FILE", "SIZE", "STATE", "SHA-256"],
        ([f.get("name"), human_size(f.get("size")), f.get("state"), f.get("sha256")] for f in files),
    )


def catalog_url(root: str, name: str, version: str, owner: str) -> str:
    return f"{root}/api/catalog/model/" + "/".join(quote(part, safe="") for part in (name, version, owner))


@click.command("open")
@with_session
@click.argument("name")
@click.argument("version")
@click.argument("owner", required=False)
def open_page(*, session: Session, name: str, version: str, owner: str | None) -> None:
    """Print the web catalog's page of model NAME VERSION of OWNER (default: yours)."""
    owner = owner or session.me()
    url = catalog_url(session.api.root, name, version, owner)
    if not session.api.page_exists(url):
        session.api.model(name, version, owner)  # not visible to you: exit 3, as for `show`
        raise CliError(
            f"{session.api.root} serves no web catalog page for {name} {version}",
            f"`registry show {name} {version} {owner}` shows the model here",
        )
    if session.output.as_json:
        session.output.json({"url": url})
    else:
        session.output.line(url)


COMMANDS = [ls, show, open_page]
