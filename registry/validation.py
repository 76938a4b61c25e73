"""The registration request: pydantic models and every rule a body must satisfy.

Rules that need facts from outside the body (the file names, the path, the caller, the allowed
source hosts, the quotas) read them from the validation context, so a single pass reports every
violation. The same models generate the OpenAPI document, which states the rules JSON Schema can
express (patterns, lengths, enums, fields that go together) and describes the others.
"""

from __future__ import annotations

import dataclasses
import keyword
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)

from registry.domain.events import EventType
from registry.domain.vocabulary import GIT_PATHS, IGNORED_PATHS, LANGUAGE_TYPES, DataType, ModelType
from registry.sources import SourceRefused, check_source_url
from registry.webhook_targets import MAX_URL_LENGTH as WEBHOOK_URL_MAX
from registry.webhook_targets import TargetRefused, webhook_url_pattern
from registry.webhook_targets import check_url as check_webhook_url

WEBHOOK_EVENT_KINDS = tuple(t.short for t in EventType)

# Path words of the API: a name, version or owner spelled like one would shadow a route.
RESERVED_WORDS = frozenset({"status", "index", "files", "clone", "manifest", "manifests", "history"})
IDENTIFIER_RULE = (
    "1-128 letters, digits, '.', '_' or '-', starting with a letter or digit, "
    "and not one of " + ", ".join(sorted(RESERVED_WORDS))
)
_RESERVED_ALTERNATIVES = "|".join("".join(f"[{c.upper()}{c}]" for c in w) for w in sorted(RESERVED_WORDS))
# The same rule as a JSON Schema (ECMA 262) pattern, for the OpenAPI document.
IDENTIFIER_PATTERN = rf"^(?!(?:{_RESERVED_ALTERNATIVES})$)[A-Za-z0-9][A-Za-z0-9._-]{{0,127}}$"
_IDENTIFIER = re.compile(IDENTIFIER_PATTERN)
# Azure Blob Storage: a blob name holds at most 1,024 characters in at most 254 path segments.
MAX_BLOB_NAME = 1024
MAX_BLOB_SEGMENTS = 254
RESERVED_TOP_NAMES = frozenset((*IGNORED_PATHS, *GIT_PATHS))
REGISTRATION_ID_LENGTH = 32
GENERATION_DIGITS = 6  # a file's generation is a path segment too (registry/domain/model.py)
MAX_LANGUAGES = 16  # per side: the listing keeps an index row per language
MAX_JSON_DEPTH = 32
TARGET_PATTERN = (
    r"^(?!/)(?!.*//)(?!.*\\)(?!(?:.*/)?\.{1,2}(?:/|$))(?!(?:[^/]*/){250})[^\x00-\x1f\x7f-\x9f]+(?<![./])$"
)
# A file name always fits a blob name, whatever the owner, name and version (128 each) before it.
SAFE_TARGET_LENGTH = MAX_BLOB_NAME - 3 * 128 - REGISTRATION_ID_LENGTH - GENERATION_DIGITS - 5
_KEYWORDS = "|".join(sorted({*keyword.kwlist, "entry"}))
# The schema's forms of file references (stricter than the checks: ASCII module names only).
ENTRY_SCRIPT_PATTERN = rf"^(?:[^/]+/)*(?!(?:{_KEYWORDS})\.py$)[A-Za-z_][A-Za-z0-9_]*\.py$"
CONDA_ENV_PATTERN = r"^(?:[^/]+/)*[^/]+\.(?:[yY][mM][lL]|[yY][aA][mM][lL])$"
INDEX_PAGE_PATTERN = r"^(?:[^/]+/)*[^/]+\.[mM][dD]$"
# Marks the schema of a source URL: the OpenAPI document adds the pattern of this deployment's
# allowed hosts (a setting) where it finds it.
SOURCE_URL_MARK = "x-source-url"


def is_identifier(value: str) -> bool:
    """Names, versions and owners: safe in URLs, blob paths and table keys as they are."""
    return isinstance(value, str) and _IDENTIFIER.fullmatch(value) is not None


def _identifier(value: str) -> str:
    if not is_identifier(value):
        raise ValueError(IDENTIFIER_RULE)
    return value


# Checked with Python's re (the schema's pattern says the same for clients and fuzzers).
Identifier = Annotated[
    str, AfterValidator(_identifier), Field(max_length=128, json_schema_extra={"pattern": IDENTIFIER_PATTERN})
]


@dataclass(frozen=True)
class RequestContext:
    """What the rules need to know beyond the body itself."""

    name: str
    version: str
    owner_id: str
    owner_name: str
    file_names: frozenset[str]
    allowed_source_hosts: tuple[str, ...]
    allow_insecure_sources: bool
    # Files the model has besides the body's model_files (a clone's inherited files, or the
    # current files of a model being updated).
    existing_files: frozenset[str] = frozenset()
    max_files: int = 1000

    @property
    def blob_prefix_length(self) -> int:
        """Characters of '{owner}/{name}/{version}/{registration id}/{generation}/' before a file."""
        fixed = REGISTRATION_ID_LENGTH + GENERATION_DIGITS + 5
        return len(self.owner_id) + len(self.name) + len(self.version) + fixed

    @property
    def file_name_room(self) -> int:
        """The most characters a file name may have: a blob name holds the prefix before it."""
        return MAX_BLOB_NAME - self.blob_prefix_length


def _context(info: ValidationInfo) -> RequestContext:
    if not isinstance(info.context, RequestContext):
        raise TypeError("validate with context=RequestContext(...)")
    return info.context


def check_target_path(value: str, info: ValidationInfo) -> str:
    """A key of model_files: a relative blob path that cannot escape or alias another file, and
    that fits a blob name once the registry's prefix is put before it."""
    if not value:
        raise ValueError("file name must not be empty")
    if value.startswith("/"):
        raise ValueError("file name must be a relative path (no leading '/')")
    if "\\" in value:
        raise ValueError("file name must not contain backslashes")
    if any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in value):
        raise ValueError("file name must not contain control characters")
    segments = value.split("/")
    if any(s in ("", ".", "..") for s in segments):
        raise ValueError("file name must not contain empty, '.' or '..' path segments")
    if value.endswith("."):
        raise ValueError("file name must not end with '.' (Blob Storage drops it)")
    room = _context(info).file_name_room
    if len(value) > room:
        raise ValueError(
            f"file name must be at most {room} characters here (a blob name holds {MAX_BLOB_NAME}, "
            "including the owner, name, version, registration id and generation before it)"
        )
    if len(segments) > MAX_BLOB_SEGMENTS - 5:
        raise ValueError(f"file name must have at most {MAX_BLOB_SEGMENTS - 5} path segments")
    if segments[0] in RESERVED_TOP_NAMES:
        # A downloaded model directory holds the signature and manifest beside the files, and
        # model-signing's verifier skips git files: a model holding these could never verify.
        raise ValueError(f"file name must not start with {segments[0]!r} (reserved in a model directory)")
    return value


def inherited_name_problems(file_names: Iterable[str], context: RequestContext) -> list[FieldError]:
    """A clone's inherited files whose names do not fit a blob name under the clone's prefix
    (its owner and version may be longer than the parent's)."""
    room = context.file_name_room
    return [
        FieldError(
            "ignore_files",
            f"the parent's file {safe_key(name)!r} is {len(name)} characters, more than the {room} "
            "a file name may have under this clone's owner and version: ignore it or use a shorter version",
        )
        for name in sorted(file_names)
        if len(name) > room
    ]


def layout_problems(file_names: Iterable[str]) -> list[FieldError]:
    """Files that cannot all exist in one directory: a file named like another's folder."""
    names = set(file_names)
    problems = []
    for name in sorted(names):
        parts = name.split("/")
        folders = ("/".join(parts[:i]) for i in range(1, len(parts)))
        clash = next((folder for folder in folders if folder in names), None)
        if clash is not None:
            problems.append(
                FieldError(
                    _field_path(("model_files", clash)),
                    f"is a file and also the folder of {safe_key(name)!r}: rename one",
                )
            )
    return problems


def check_source(value: str, info: ValidationInfo) -> str:
    context = _context(info)
    try:
        return check_source_url(
            value, context.allowed_source_hosts, local_emulator_ok=context.allow_insecure_sources
        )
    except SourceRefused as refused:
        raise ValueError(str(refused)) from None


def _positive_whole_number(value: Any) -> Any:
    # JSON numbers may arrive as 5e7; booleans and strings are not numbers here.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be a positive integer")
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError("must be a positive integer")
        return int(value)
    return value


TargetPath = Annotated[str, AfterValidator(check_target_path)]
PositiveCount = Annotated[
    int,
    BeforeValidator(_positive_whole_number),
    Field(gt=0),
    WithJsonSchema({"type": "integer", "exclusiveMinimum": 0}),
]
_SOURCE_URL_SCHEMA: dict[str, Any] = {
    "type": "string",
    "minLength": 1,
    "maxLength": 4096,
    "format": "uri",
    "description": "an https URL on an allowed host (a SAS URL of a blob)",
    SOURCE_URL_MARK: True,
}
SourceUrl = Annotated[str, AfterValidator(check_source), WithJsonSchema(_SOURCE_URL_SCHEMA)]
SHA256_PATTERN = r"^[0-9a-fA-F]{64}$"


class SourceFile(BaseModel):
    """A source with the digest its owner expects the registry to find."""

    model_config = ConfigDict(extra="forbid", strict=True)

    url: SourceUrl
    sha256: Annotated[str, Field(pattern=SHA256_PATTERN, description="hex SHA-256 of the file")]


_MODEL_FILES_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "target file name -> its source URL, or {url, sha256} with the digest it must have",
    "propertyNames": {
        "type": "string",
        "minLength": 1,
        "maxLength": SAFE_TARGET_LENGTH,
        "pattern": TARGET_PATTERN,
    },
    "additionalProperties": {
        "anyOf": [
            _SOURCE_URL_SCHEMA,
            {
                "type": "object",
                "properties": {
                    "url": _SOURCE_URL_SCHEMA,
                    "sha256": {"type": "string", "pattern": SHA256_PATTERN},
                },
                "required": ["url", "sha256"],
                "additionalProperties": False,
            },
        ]
    },
    "x-model-files": True,
}


def _source_kind(value: Any) -> str:
    return _SOURCE_FILE if isinstance(value, dict | SourceFile) else _SOURCE_URL


_SOURCE_URL, _SOURCE_FILE = "<source-url>", "<source-file>"  # union tags, left out of field paths
Source = Annotated[
    Annotated[str, AfterValidator(check_source), Tag(_SOURCE_URL)] | Annotated[SourceFile, Tag(_SOURCE_FILE)],
    Discriminator(_source_kind),
]


def sources_of(files: Mapping[str, str | SourceFile]) -> dict[str, str]:
    """target -> source URL, whichever form each was given in."""
    return {target: spec if isinstance(spec, str) else spec.url for target, spec in files.items()}


def digests_of(files: Mapping[str, str | SourceFile]) -> dict[str, str]:
    """target -> the SHA-256 (lower-case hex) the owner expects, for the files given with one."""
    return {target: spec.sha256.lower() for target, spec in files.items() if isinstance(spec, SourceFile)}


ShortText = Annotated[str, Field(max_length=10_000)]
Language = Annotated[str, Field(min_length=1, max_length=64)]
M = TypeVar("M", bound=BaseModel)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, protected_namespaces=())


def _require_file(
    value: str | None, info: ValidationInfo, *, suffixes: tuple[str, ...], what: str
) -> str | None:
    if value is None:
        return None
    if not value.lower().endswith(suffixes):
        raise ValueError(f"{what} must name a {' or '.join(suffixes)} file")
    if value not in _context(info).file_names:
        raise ValueError(f"{what} must be a key of model_files")
    return value


def _string(field: str) -> dict[str, Any]:
    return {"required": [field], "properties": {field: {"type": "string"}}}


def _conda_or_docker(schema: dict[str, Any]) -> None:
    """JSON Schema for: conda_env or docker_image (or both); docker_registry only with docker_image."""
    schema["anyOf"] = [_string("conda_env"), _string("docker_image")]
    schema["if"] = {"required": ["docker_registry"], "properties": {"docker_registry": {"type": "object"}}}
    schema["then"] = _string("docker_image")


class DockerRegistry(_Strict):
    url: Annotated[str, Field(min_length=1, max_length=2048)]
    username: Annotated[str, Field(max_length=256)] | None = None
    # Write-only: kept sealed with the sources, never returned, logged or stored readable.
    password: Annotated[str, Field(max_length=4096)] | None = Field(default=None, repr=False)


class InferenceProperties(_Strict):
    model_config = ConfigDict(json_schema_extra=_conda_or_docker)

    entry_script: Annotated[
        str,
        Field(
            min_length=4,
            max_length=MAX_BLOB_NAME,
            description="a .py key of model_files, named as a Python module (not entry.py)",
            json_schema_extra={"pattern": ENTRY_SCRIPT_PATTERN},
        ),
    ]
    conda_env: (
        Annotated[
            str,
            Field(min_length=5, max_length=MAX_BLOB_NAME, json_schema_extra={"pattern": CONDA_ENV_PATTERN}),
        ]
        | None
    ) = Field(default=None, description="a .yml or .yaml key of model_files")
    docker_image: Annotated[str, Field(min_length=1, max_length=1024)] | None = None
    docker_registry: DockerRegistry | None = None

    @field_validator("entry_script")
    @classmethod
    def _entry_script(cls, value: str, info: ValidationInfo) -> str:
        _require_file(value, info, suffixes=(".py",), what="entry_script")
        stem = value.rsplit("/", 1)[-1][: -len(".py")]
        if not stem.isidentifier() or keyword.iskeyword(stem):
            raise ValueError(
                "entry_script must be named as a Python module (letters, digits, '_'; e.g. score.py)"
            )
        if stem == "entry":
            raise ValueError("entry_script must not be named entry.py (reserved by the runtime)")
        return value

    @field_validator("conda_env")
    @classmethod
    def _conda_env(cls, value: str | None, info: ValidationInfo) -> str | None:
        return _require_file(value, info, suffixes=(".yml", ".yaml"), what="conda_env")


ArgumentValue = Annotated[str | int | float | bool | None, Field()]


class TrainingProperties(InferenceProperties):
    args: (
        Annotated[dict[Annotated[str, Field(max_length=256)], ArgumentValue], Field(max_length=256)] | None
    ) = None


class ModelConfig(_Strict):
    # Enums take their JSON strings (the models are strict otherwise).
    type: Annotated[ModelType, Field(strict=False)]
    description: ShortText = ""
    inference_properties: InferenceProperties
    training_properties: TrainingProperties | None = None
    private: bool = True
    name: str | None = Field(default=None, description="if given, the name in the path")
    version: str | None = Field(default=None, description="if given, the version in the path")
    owner: str | None = Field(default=None, description="if given, the caller")

    @field_validator("name", "version")
    @classmethod
    def _matches_path(cls, value: str | None, info: ValidationInfo) -> str | None:
        expected = getattr(_context(info), info.field_name or "")
        if value is not None and value != expected:
            raise ValueError(f"must equal the {info.field_name} in the path")
        return value

    @field_validator("owner")
    @classmethod
    def _matches_caller(cls, value: str | None, info: ValidationInfo) -> str | None:
        context = _context(info)
        if value is not None and value not in (context.owner_id, context.owner_name):
            raise ValueError("must be the caller (the owner is whoever registers the model)")
        return value


def _image_file(value: str, info: ValidationInfo) -> str:
    if value not in _context(info).file_names:
        raise ValueError("must be a key of model_files")
    return value


def _languages_when_written(schema: dict[str, Any]) -> None:
    """JSON Schema for: languages are required (non-empty) exactly when the types name a written one."""
    written = sorted(t.value for t in LANGUAGE_TYPES)
    rules = []
    for side in ("input", "output"):
        types, languages = f"{side}_types", f"{side}_languages"
        rules.append(
            {
                "if": {"properties": {types: {"contains": {"enum": written}}}, "required": [types]},
                "then": {"required": [languages], "properties": {languages: {"minItems": 1}}},
                "else": {"not": {"required": [languages]}},
            }
        )
    schema["allOf"] = rules


DataTypes = Annotated[list[Annotated[DataType, Field(strict=False)]], Field(min_length=1, max_length=4)]
Languages = Annotated[list[Language], Field(max_length=MAX_LANGUAGES)]


class ModelMetainfo(_Strict):
    model_config = ConfigDict(json_schema_extra=_languages_when_written)

    input_types: DataTypes
    input_languages: Languages | None = None
    input_description: Annotated[str, Field(min_length=1, max_length=10_000)]
    output_types: DataTypes
    output_languages: Languages | None = None
    output_description: Annotated[str, Field(min_length=1, max_length=10_000)]
    num_params: PositiveCount
    index_page_file: Annotated[
        str,
        Field(
            min_length=4,
            max_length=MAX_BLOB_NAME,
            description="a .md key of model_files",
            json_schema_extra={"pattern": INDEX_PAGE_PATTERN},
        ),
    ]
    images: Annotated[list[Annotated[str, AfterValidator(_image_file)]], Field(max_length=100)] | None = None

    @field_validator("index_page_file")
    @classmethod
    def _index_page(cls, value: str, info: ValidationInfo) -> str | None:
        return _require_file(value, info, suffixes=(".md",), what="index_page_file")


ModelFiles = Annotated[dict[TargetPath, Source], WithJsonSchema(_MODEL_FILES_SCHEMA)]


class RegistrationRequest(_Strict):
    config: ModelConfig = Field(alias="model_config")
    model_files: Annotated[
        dict[TargetPath, Source], WithJsonSchema({**_MODEL_FILES_SCHEMA, "minProperties": 1})
    ]
    model_metainfo: ModelMetainfo
    private_packages: Annotated[list[SourceUrl], Field(max_length=100)] | None = None


@dataclass(frozen=True)
class FieldError:
    field: str
    rule: str


class InvalidRequest(Exception):
    """A request that breaks one or more rules; `errors` names each field and rule."""

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(f"{e.field}: {e.rule}" for e in errors))
        self.errors = errors


_FRIENDLY = {
    "missing": "field required",
    "extra_forbidden": "unknown field",
}
_KEY_SHOWN = 40


def safe_key(key: str) -> str:
    """A caller's key, fit to echo back: never what follows a '?' (a SAS), never a control
    character, never longer than a few dozen characters."""
    shown = key.split("?", 1)[0]
    shown = "".join(c if c.isprintable() else "?" for c in shown)
    if len(shown) > _KEY_SHOWN:
        shown = shown[: _KEY_SHOWN - 1] + "…"
    return shown + ("?…" if "?" in key else "")


_PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,39}")


def _field_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        if part in ("[key]", _SOURCE_URL, _SOURCE_FILE):
            continue  # pydantic's marks (a dict's key, a union's branch): the field itself is named
        if isinstance(part, int):
            path += f"[{part}]"
        elif not path.startswith("model_files") and not path.endswith("args") and _PLAIN_NAME.fullmatch(part):
            path += f".{part}" if path else part  # a field name (known or not): short and plain
        else:  # a key the caller chose: shown safely
            path += f"[{safe_key(part)!r}]"
    return path or "body"


def field_errors(error: ValidationError) -> list[FieldError]:
    """Each violation as (field, rule), never echoing the rejected value (it may hold a SAS)."""
    result = []
    for item in error.errors(include_url=False, include_input=False, include_context=False):
        rule = _FRIENDLY.get(item["type"], item["msg"])
        rule = rule.removeprefix("Value error, ")
        result.append(FieldError(_field_path(item["loc"]), rule))
    return result


def validate_identifiers(**values: str) -> None:
    errors = [FieldError(k, IDENTIFIER_RULE) for k, v in values.items() if not is_identifier(v)]
    if errors:
        raise InvalidRequest(errors)


def json_depth(value: Any, limit: int = MAX_JSON_DEPTH) -> int:
    """How deeply the value nests (stops counting past `limit`)."""
    depth, level = 0, [value]
    while level and depth <= limit:
        depth += 1
        level = [
            child
            for node in level
            if isinstance(node, dict | list)
            for child in (node.values() if isinstance(node, dict) else node)
        ]
    return depth


def _cross_field_errors(body: dict[str, Any]) -> list[FieldError]:
    """Rules that span fields, checked on the raw body so they are reported with all the others."""
    errors = []
    config = body.get("model_config")
    for section in ("inference_properties", "training_properties"):
        props = config.get(section) if isinstance(config, dict) else None
        if not isinstance(props, dict):
            continue
        if props.get("conda_env") is None and props.get("docker_image") is None:
            errors.append(
                FieldError(f"model_config.{section}", "at least one of conda_env or docker_image is required")
            )
        if props.get("docker_registry") is not None and props.get("docker_image") is None:
            errors.append(FieldError(f"model_config.{section}.docker_registry", "requires docker_image"))
    meta = body.get("model_metainfo")
    if not isinstance(meta, dict):
        return errors
    for side in ("input", "output"):
        types = meta.get(f"{side}_types")
        if not isinstance(types, list):
            continue
        languages = meta.get(f"{side}_languages")
        wants_languages = bool(
            {t.value for t in LANGUAGE_TYPES}.intersection(t for t in types if isinstance(t, str))
        )
        if wants_languages and not languages:
            errors.append(
                FieldError(
                    f"model_metainfo.{side}_languages",
                    f"required and non-empty when {side}_types includes SOURCE_CODE or NATURAL_LANGUAGE",
                )
            )
        if languages is not None and not wants_languages:
            errors.append(
                FieldError(
                    f"model_metainfo.{side}_languages",
                    f"applies only when {side}_types includes SOURCE_CODE or NATURAL_LANGUAGE",
                )
            )
    return errors


def bind_files(context: RequestContext, files: Any) -> RequestContext:
    """The context with every file name the model will have: the body's and its existing ones."""
    names = frozenset(k for k in files if isinstance(k, str)) if isinstance(files, dict) else frozenset()
    return dataclasses.replace(context, file_names=names | context.existing_files)


def _check_shape(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise InvalidRequest([FieldError("body", "must be a JSON object")])
    if json_depth(body) > MAX_JSON_DEPTH:
        raise InvalidRequest([FieldError("body", f"must not nest deeper than {MAX_JSON_DEPTH} levels")])
    return body


def parse_registration(body: Any, context: RequestContext) -> RegistrationRequest:
    """Validate a decoded JSON body; raise InvalidRequest naming every violated field and rule."""
    validate_identifiers(name=context.name, version=context.version)
    bound = bind_files(context, _check_shape(body).get("model_files"))
    cross_field = _cross_field_errors(body)
    cross_field += layout_problems(bound.file_names)
    if not bound.file_names:
        cross_field.append(FieldError("model_files", "at least one file is required"))
    elif len(bound.file_names) > bound.max_files:
        cross_field.append(FieldError("model_files", f"a model has at most {bound.max_files} files"))
    try:
        request = RegistrationRequest.model_validate(body, context=bound)
    except ValidationError as error:
        raise InvalidRequest(field_errors(error) + cross_field) from None
    if cross_field:
        raise InvalidRequest(cross_field)
    return request


class MetainfoChanges(_Strict):
    """Fields of model_metainfo to change; the whole is validated again, as at registration, once
    merged with the model's current (or parent's) metainfo."""

    input_types: DataTypes | None = None
    input_languages: Languages | None = None
    input_description: Annotated[str, Field(min_length=1, max_length=10_000)] | None = None
    output_types: DataTypes | None = None
    output_languages: Languages | None = None
    output_description: Annotated[str, Field(min_length=1, max_length=10_000)] | None = None
    num_params: PositiveCount | None = None
    index_page_file: (
        Annotated[
            str,
            Field(min_length=4, max_length=MAX_BLOB_NAME, json_schema_extra={"pattern": INDEX_PAGE_PATTERN}),
        ]
        | None
    ) = None
    images: Annotated[list[Annotated[str, Field(max_length=MAX_BLOB_NAME)]], Field(max_length=100)] | None = (
        None
    )

    def changes(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_unset=True)


class ConfigChanges(_Strict):
    private: bool | None = None
    description: ShortText | None = None


class UpdateRequest(_Strict):
    """PATCH: any mix of visibility, description, metainfo fields and files to add or replace."""

    config: ConfigChanges | None = Field(default=None, alias="model_config")
    model_metainfo: MetainfoChanges | None = None
    model_files: ModelFiles | None = None


class ConfigOverrides(_Strict):
    """What a clone may change of its parent's model_config (validated again, whole, once merged)."""

    type: Annotated[ModelType, Field(strict=False)] | None = None
    description: ShortText | None = None
    inference_properties: InferenceProperties | None = None
    training_properties: TrainingProperties | None = None
    private: bool | None = None


class CloneRequest(_Strict):
    """PUT /model/clone/{name}/{version}: a new model from a parent the caller may see."""

    parent_version: Identifier
    parent_owner: Identifier
    model_files: ModelFiles | None = None
    ignore_files: (
        Annotated[list[Annotated[str, Field(max_length=MAX_BLOB_NAME)]], Field(max_length=1000)] | None
    ) = None
    model_config_overrides: ConfigOverrides | None = Field(default=None, alias="model_config")
    model_metainfo: MetainfoChanges | None = None
    private_packages: Annotated[list[SourceUrl], Field(max_length=100)] | None = None


def parse_with(model: type[M], body: Any, context: RequestContext) -> M:
    """Validate a body against `model`, reporting violations as InvalidRequest."""
    _check_shape(body)
    bound = bind_files(context, body.get("model_files"))
    try:
        parsed = model.model_validate(body, context=bound)
    except ValidationError as error:
        raise InvalidRequest(field_errors(error)) from None
    problems = layout_problems(bound.file_names) if body.get("model_files") else []
    if problems:
        raise InvalidRequest(problems)
    return parsed


# -- webhook subscriptions ----------------------------------------------------------------------

# Marks the schema of a webhook URL: the OpenAPI document states dev mode's loopback URLs too.
WEBHOOK_URL_MARK = "x-webhook-url"
MODEL_FILTER_PATTERN = r"^(?:[A-Za-z0-9][A-Za-z0-9._-]{0,127}|[A-Za-z0-9][A-Za-z0-9._-]{2,127}\*)$"
_MODEL_FILTER = re.compile(MODEL_FILTER_PATTERN)
MODEL_FILTER_RULE = "a model name, or at least 3 of its first characters followed by '*'"


@dataclass(frozen=True)
class WebhookContext:
    dev_mode: bool = False  # local development: http receivers on loopback are taken


def _webhook_url(value: str, info: ValidationInfo) -> str:
    dev_mode = isinstance(info.context, WebhookContext) and info.context.dev_mode
    try:
        return check_webhook_url(value, dev_mode=dev_mode)
    except TargetRefused as refused:
        raise ValueError(f"webhook URL {refused}") from None


def _model_filter(value: str) -> str:
    if not _MODEL_FILTER.fullmatch(value):
        raise ValueError(MODEL_FILTER_RULE)
    return value


def _event_kind(value: str) -> str:
    if value not in WEBHOOK_EVENT_KINDS:
        raise ValueError(f"must be one of {', '.join(WEBHOOK_EVENT_KINDS)}")
    return value


WebhookUrl = Annotated[
    str,
    AfterValidator(_webhook_url),
    WithJsonSchema(
        {
            "type": "string",
            "minLength": 1,
            "maxLength": WEBHOOK_URL_MAX,
            "pattern": webhook_url_pattern(dev_mode=False),
            "description": "where events are POSTed: an https URL on a public DNS name",
            WEBHOOK_URL_MARK: True,
        }
    ),
]
ModelNameFilter = Annotated[
    str,
    AfterValidator(_model_filter),
    Field(max_length=129, json_schema_extra={"pattern": MODEL_FILTER_PATTERN}),
]
EventKindName = Annotated[
    str, AfterValidator(_event_kind), Field(json_schema_extra={"enum": list(WEBHOOK_EVENT_KINDS)})
]


class WebhookRequest(_Strict):
    """PUT /webhooks/{id}: where to send which events."""

    url: WebhookUrl
    events: (
        Annotated[list[EventKindName], Field(min_length=1, max_length=2 * len(WEBHOOK_EVENT_KINDS))] | None
    ) = Field(default=None, description="event types (short names); absent: every type")
    models: Annotated[list[ModelNameFilter], Field(min_length=1, max_length=10)] | None = Field(
        default=None, description="model names, or `prefix*` (3 characters at least); absent: every model"
    )
    scope: Literal["own", "visible"] = Field(
        default="own",
        description="own: the caller's models; visible: also other owners' models, while they are public",
    )
    description: Annotated[str, Field(max_length=256)] = ""


def parse_webhook_request(body: Any, *, dev_mode: bool) -> WebhookRequest:
    """The validated body; InvalidRequest naming each field and rule."""
    if not isinstance(body, dict):
        raise InvalidRequest([FieldError("body", "must be a JSON object")])
    try:
        return WebhookRequest.model_validate(body, context=WebhookContext(dev_mode))
    except ValidationError as problem:
        raise InvalidRequest(field_errors(problem)) from None
