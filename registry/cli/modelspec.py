"""A model folder: its files, its model.yaml and the flags, made into the registration body.

`model.yaml` holds the PUT body without `model_files` (those are the folder's files):

    model_config: {type: DECODER, description: ..., inference_properties: {entry_script: score.py, ...}}
    model_metainfo: {input_types: [...], ..., index_page_file: README.md}

plus, optionally, `name` and `version` (the flags win). The body is checked with the API's own
rules (`registry.validation.parse_registration`) before anything is uploaded.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from registry.cli.errors import FAILED, CliError, UsageProblem
from registry.validation import FieldError, InvalidRequest, RequestContext, parse_registration

MODEL_FILE = "model.yaml"
TOP_LEVEL = frozenset({"name", "version", "model_config", "model_metainfo", "private_packages"})

# flag -> where its value goes in the body
FLAG_PATHS = {
    "model_type": ("model_config", "type"),  # --type
    "description": ("model_config", "description"),
    "private": ("model_config", "private"),
    "entry_script": ("model_config", "inference_properties", "entry_script"),
    "conda_env": ("model_config", "inference_properties", "conda_env"),
    "docker_image": ("model_config", "inference_properties", "docker_image"),
    "index_page": ("model_metainfo", "index_page_file"),
    "input_types": ("model_metainfo", "input_types"),
    "input_languages": ("model_metainfo", "input_languages"),
    "input_description": ("model_metainfo", "input_description"),
    "output_types": ("model_metainfo", "output_types"),
    "output_languages": ("model_metainfo", "output_languages"),
    "output_description": ("model_metainfo", "output_description"),
    "num_params": ("model_metainfo", "num_params"),
}


@dataclass(frozen=True)
class LocalFile:
    target: str  # the key in model_files: the path relative to the folder, with '/'
    path: Path
    size: int
    mtime_ns: int


def folder_files(folder: Path, skip: frozenset[str] = frozenset({MODEL_FILE})) -> list[LocalFile]:
    """Every regular file under `folder` (sorted), except `skip` and hidden files or folders."""
    if not folder.is_dir():
        raise UsageProblem(
            f"{folder} is not a folder", "register DIR takes the folder that holds the model's files"
        )
    files = []
    for directory, subdirs, names in os.walk(folder):
        subdirs[:] = sorted(d for d in subdirs if not d.startswith("."))
        for name in names:
            path = Path(directory) / name
            target = path.relative_to(folder).as_posix()
            if name.startswith(".") or target in skip or not path.is_file():
                continue
            stat = path.stat()
            files.append(LocalFile(target, path, stat.st_size, stat.st_mtime_ns))
    return sorted(files, key=lambda f: f.target)


def read_model_yaml(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        document = yaml.safe_load(path.read_text())
    except yaml.YAMLError as problem:
        raise CliError(
            f"{path} is not valid YAML: {problem}", "fix its syntax and run the command again"
        ) from None
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise CliError(f"{path} must hold a mapping (model_config, model_metainfo, ...)", code=FAILED)
    unknown = sorted(set(document) - TOP_LEVEL)
    if unknown:
        raise CliError(
            f"{path}: unknown top-level key(s) {', '.join(map(str, unknown))}",
            f"model.yaml may hold {', '.join(sorted(TOP_LEVEL))}",
            errors=[{"field": str(key), "rule": "unknown field"} for key in unknown],
        )
    return document


def parse_assignment(text: str) -> tuple[tuple[str, ...], Any]:
    """`--set model_config.training_properties.entry_script=train.py`: a dotted path and a YAML value."""
    path, sep, raw = text.partition("=")
    keys = tuple(path.strip().split("."))
    if not sep or not all(keys):
        raise UsageProblem(
            f"--set {text!r}: expected PATH=VALUE", "e.g. --set model_config.description='A model'"
        )
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return keys, value


def _put(document: dict[str, Any], keys: Sequence[str], value: Any) -> None:
    node = document
    for key in keys[:-1]:
        child = node.get(key)
        if not isinstance(child, dict):
            child = node[key] = {}
        node = child
    node[keys[-1]] = value


def model_document(
    yaml_document: Mapping[str, Any], flags: Mapping[str, Any], assignments: Sequence[str] = ()
) -> dict[str, Any]:
    """model.yaml with the flags (then each --set) applied on top; flags left as None change nothing."""
    document = copy.deepcopy(dict(yaml_document))
    for flag, value in flags.items():
        if value is None or (isinstance(value, tuple | list) and not value):
            continue
        _put(document, FLAG_PATHS[flag], list(value) if isinstance(value, tuple | list) else value)
    for assignment in assignments:
        _put(document, *parse_assignment(assignment))
    return document


def registration_body(document: Mapping[str, Any], sources: Mapping[str, str]) -> dict[str, Any]:
    """The PUT body: the document's sections and `model_files` (target -> source URL)."""
    body = {key: copy.deepcopy(value) for key, value in document.items() if key not in ("name", "version")}
    body["model_files"] = dict(sources)
    return body


def check_context(
    *, name: str, version: str, owner: tuple[str, str], source_host: str, insecure_sources: bool
) -> RequestContext:
    """What the API's rules need to know, as far as it is known here. The sources are the user's
    own blob URLs, so their host is allowed; the registry checks its own list when the request comes."""
    owner_id, owner_name = owner
    return RequestContext(
        name=name,
        version=version,
        owner_id=owner_id,
        owner_name=owner_name,
        file_names=frozenset(),
        allowed_source_hosts=(source_host,),
        allow_insecure_sources=insecure_sources,
    )


def check_body(body: Any, context: RequestContext) -> list[FieldError]:
    """The API's own violations of this body (none: []), with its field and rule messages."""
    try:
        parse_registration(body, context)
    except InvalidRequest as problem:
        return problem.errors
    return []
