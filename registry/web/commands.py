"""The commands that register a new version of a model: the API's PUT with curl, and the CLI's
`registry register DIR --name N --version V ...`, for the owner to copy.

From a model's page they carry every setting of the version shown (its API view); from My
registrations, what a list row knows (type, description, visibility), with placeholders for the
rest, so the list costs no read of each model's document. Neither ever holds a file's source
URL (a SAS) or a password: file URLs, the new version, the folder and the token are placeholders.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from typing import Any

NEW_VERSION = "<new-version>"
FOLDER = "<folder-with-the-files>"
TOKEN_VARIABLE = "$TOKEN"  # noqa: S105 - a shell variable the caller sets to their bearer token
PASSWORD = "<the registry's password>"  # noqa: S105 - a placeholder: a view never holds the password

# Where each of the CLI's setting flags puts its value in the body (registry/cli/modelspec.py's
# FLAG_PATHS, by option; a unit test holds the two together). The web app does not import the
# CLI, whose libraries (click, PyYAML) the Function app does not install.
CLI_FLAGS: dict[tuple[str, ...], str] = {
    ("model_config", "type"): "--type",
    ("model_config", "description"): "--description",
    ("model_config", "inference_properties", "entry_script"): "--entry-script",
    ("model_config", "inference_properties", "conda_env"): "--conda-env",
    ("model_config", "inference_properties", "docker_image"): "--docker-image",
    ("model_metainfo", "index_page_file"): "--index-page",
    ("model_metainfo", "input_types"): "--input-type",
    ("model_metainfo", "input_languages"): "--input-language",
    ("model_metainfo", "input_description"): "--input-description",
    ("model_metainfo", "output_types"): "--output-type",
    ("model_metainfo", "output_languages"): "--output-language",
    ("model_metainfo", "output_description"): "--output-description",
    ("model_metainfo", "num_params"): "--num-params",
}
# Not settings of a new version: the path names it and the caller owns it.
_FROM_PATH = frozenset({"name", "version", "owner"})
_SECRET = frozenset({"password"})  # write-only (docker_registry.password): never in a view anyway


@dataclass(frozen=True)
class Commands:
    curl: str
    cli: str


def _file_url(name: str) -> str:
    return f"<https URL of {name}, with a read SAS>"


def _without_secrets(value: Any) -> Any:
    """The value with a placeholder for any password (a registry login needs one again)."""
    if isinstance(value, dict):
        kept = {k: _without_secrets(v) for k, v in value.items() if k not in _SECRET}
        return kept | {"password": PASSWORD} if "username" in kept else kept
    if isinstance(value, list):
        return [_without_secrets(v) for v in value]
    return value


def _settings(config: dict[str, Any]) -> dict[str, Any]:
    kept = {k: v for k, v in config.items() if k not in _FROM_PATH}
    return dict(_without_secrets(kept))


def curl(base: str, name: str, body: dict[str, Any]) -> str:
    data = json.dumps(body, indent=2, ensure_ascii=False)
    return (
        f"curl -X PUT {shlex.quote(f'{base}/api/v1.0/model/{name}/{NEW_VERSION}')} \\\n"
        f"  -H \"Authorization: Bearer {TOKEN_VARIABLE}\" -H 'Content-Type: application/json' \\\n"
        f"  -d {shlex.quote(data)}"
    )


def _leaves(value: Any, path: tuple[str, ...]) -> list[tuple[tuple[str, ...], Any]]:
    """The settings as (path, value); a mapping whose keys a dotted `--set` path cannot spell
    (free-form training args such as "optimizer.lr") is one value, set whole as JSON."""
    if isinstance(value, dict) and all("." not in str(k) and "=" not in str(k) for k in value):
        found: list[tuple[tuple[str, ...], Any]] = []
        for key, inner in value.items():
            found += _leaves(inner, (*path, str(key)))
        return found
    return [] if value is None else [(path, value)]


def cli(base: str, name: str, settings: dict[str, Any]) -> str:
    """`registry register`: a flag for each setting that has one, `--set PATH=VALUE` (a JSON value,
    which is YAML too) for the others. `model.yaml` in the folder, if any, gives what is left."""
    args = ["registry", "register", FOLDER, "--name", name, "--version", NEW_VERSION]
    private = settings.get("model_config", {}).get("private")
    if private is not None:
        args.append("--private" if private else "--public")
    for section in ("model_config", "model_metainfo"):
        for path, value in _leaves(settings.get(section, {}), (section,)):
            if path == ("model_config", "private"):
                continue
            flag = CLI_FLAGS.get(path)
            if flag is None:
                args += ["--set", f"{'.'.join(path)}={json.dumps(value, ensure_ascii=False)}"]
            elif isinstance(value, list):
                for item in value:
                    args += [flag, str(item)]
            else:
                args += [flag, str(value)]
    args += ["--api", base]
    lines, line = [], ""
    for word in map(shlex.quote, args):
        if line and (word.startswith("--") or len(line) + len(word) > 100):
            lines.append(line)
            line = "  "
        line += word if not line.strip() else f" {word}"
    return " \\\n".join([*lines, line])


def from_view(base: str, view: dict[str, Any]) -> Commands:
    """A model's page: its version's settings, its file names with placeholder URLs."""
    config = _settings(view.get("model_config") or {})
    metainfo = dict(_without_secrets(view.get("model_metainfo") or {}))
    files = {f["name"]: _file_url(f["name"]) for f in view.get("files", [])}
    body = {"model_config": config, "model_files": files, "model_metainfo": metainfo}
    return Commands(
        curl=curl(base, view["name"], body),
        cli=cli(base, view["name"], {"model_config": config, "model_metainfo": metainfo}),
    )


def from_row(base: str, name: str, model_type: str, description: str, private: bool) -> Commands:
    """A row of My registrations: what the list knows, and placeholders for the rest."""
    known = {"type": model_type, "description": description, "private": private}
    body = {
        "model_config": known
        | {"inference_properties": {"entry_script": "<score.py>", "conda_env": "<environment.yml>"}},
        "model_files": {"<file name>": _file_url("the file")},
        "model_metainfo": {
            "input_types": ["<NATURAL_LANGUAGE>"],
            "input_languages": ["<en>"],
            "input_description": "<what it takes>",
            "output_types": ["<NATURAL_LANGUAGE>"],
            "output_languages": ["<en>"],
            "output_description": "<what it gives>",
            "num_params": "<number of parameters>",
            "index_page_file": "<index.md>",
        },
    }
    return Commands(curl=curl(base, name, body), cli=cli(base, name, {"model_config": known}))
