"""The registration request: pydantic models and every rule a body must satisfy.

Rules that need facts from outside the body (the file names, the path, the caller, the allowed
source hosts) read them from the validation context, so a single pass reports every violation.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import ipaddress
import keyword
from dataclasses import dataclass
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

# Path words of the API: a name, version or owner spelled like one would shadow a route.
RESERVED_WORDS = frozenset({"status", "index", "files", "clone"})
IDENTIFIER_RULE = (
    "1-128 letters, digits, '.', '_' or '-', starting with a letter or digit, "
    "and not one of " + ", ".join(sorted(RESERVED_WORDS))
)
MAX_FILES = 1000
MAX_TARGET_LENGTH = 1024
LANGUAGE_TYPES = frozenset({"SOURCE_CODE", "NATURAL_LANGUAGE"})
_IDENTIFIER_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")

ModelType = Literal["ENCODER", "DECODER", "SEQ2SEQ"]
DataType = Literal["SOURCE_CODE", "NATURAL_LANGUAGE", "CLASS_LABEL", "OTHER"]


def is_identifier(value: str) -> bool:
    """Names, versions and owners: safe in URLs, blob paths and table keys as they are."""
    return (
        0 < len(value) <= 128
        and value[0].isascii()
        and value[0].isalnum()
        and all(c in _IDENTIFIER_CHARS for c in value)
        and value.lower() not in RESERVED_WORDS
    )


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


def _context(info: ValidationInfo) -> RequestContext:
    if not isinstance(info.context, RequestContext):
        raise TypeError("validate with context=RequestContext(...)")
    return info.context


def check_target_path(value: str) -> str:
    """A key of model_files: a relative blob path that cannot escape or alias another file."""
    if not value:
        raise ValueError("file name must not be empty")
    if len(value) > MAX_TARGET_LENGTH:
        raise ValueError(f"file name must be at most {MAX_TARGET_LENGTH} characters")
    if value.startswith("/"):
        raise ValueError("file name must be a relative path (no leading '/')")
    if "\\" in value:
        raise ValueError("file name must not contain backslashes")
    if any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in value):
        raise ValueError("file name must not contain control characters")
    segments = value.split("/")
    if any(s in ("", ".", "..") for s in segments):
        raise ValueError("file name must not contain empty, '.' or '..' path segments")
    return value


def _host_allowed(host: str, patterns: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatchcase(host, pattern) for pattern in patterns)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def redact_url(url: str) -> str:
    """The URL without its query string (which holds the SAS token) or user info."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def check_source_url(value: str, info: ValidationInfo) -> str:
    context = _context(info)
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        raise ValueError("source must be an absolute URL") from None
    host = (parts.hostname or "").lower()
    if not parts.scheme or not host:
        raise ValueError("source must be an absolute URL")
    if parts.username or parts.password:
        raise ValueError("source URL must not carry user credentials")
    insecure_ok = context.allow_insecure_sources
    if parts.scheme not in ("https", "http") or (parts.scheme == "http" and not insecure_ok):
        raise ValueError("source URL must use https")
    if not (_host_allowed(host, context.allowed_source_hosts) or (insecure_ok and _is_loopback(host))):
        allowed = ", ".join(context.allowed_source_hosts) or "none"
        raise ValueError(f"source host {host!r} is not allowed (allowed: {allowed})")
    return value


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
SourceUrl = Annotated[str, AfterValidator(check_source_url)]
ShortText = Annotated[str, Field(max_length=10_000)]
Language = Annotated[str, Field(min_length=1, max_length=64)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, protected_namespaces=())


def _require_file(value: str, info: ValidationInfo, *, suffixes: tuple[str, ...], what: str) -> str:
    if not value.lower().endswith(suffixes):
        raise ValueError(f"{what} must name a {' or '.join(suffixes)} file")
    if value not in _context(info).file_names:
        raise ValueError(f"{what} must be a key of model_files")
    return value


class DockerRegistry(_Strict):
    url: Annotated[str, Field(min_length=1, max_length=2048)]
    username: Annotated[str, Field(max_length=256)] | None = None
    # Write-only: kept sealed with the sources, never returned, logged or stored readable.
    password: Annotated[str, Field(max_length=4096)] | None = Field(default=None, repr=False)


class InferenceProperties(_Strict):
    entry_script: str
    conda_env: str | None = None
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
    def _conda_env(cls, value: str, info: ValidationInfo) -> str:
        return _require_file(value, info, suffixes=(".yml", ".yaml"), what="conda_env")


ArgumentValue = Annotated[str | int | float | bool | None, Field()]


class TrainingProperties(InferenceProperties):
    args: dict[str, ArgumentValue] | None = None


class ModelConfig(_Strict):
    type: ModelType
    description: ShortText = ""
    inference_properties: InferenceProperties
    training_properties: TrainingProperties | None = None
    private: bool = True
    name: str | None = None
    version: str | None = None
    owner: str | None = None

    @field_validator("name", "version")
    @classmethod
    def _matches_path(cls, value: str, info: ValidationInfo) -> str:
        expected = getattr(_context(info), info.field_name or "")
        if value != expected:
            raise ValueError(f"must equal the {info.field_name} in the path ({expected!r})")
        return value

    @field_validator("owner")
    @classmethod
    def _matches_caller(cls, value: str, info: ValidationInfo) -> str:
        context = _context(info)
        if value not in (context.owner_id, context.owner_name):
            raise ValueError("must be the caller (the owner is whoever registers the model)")
        return value


def _image_file(value: str, info: ValidationInfo) -> str:
    if value not in _context(info).file_names:
        raise ValueError("must be a key of model_files")
    return value


class ModelMetainfo(_Strict):
    input_types: Annotated[list[DataType], Field(min_length=1)]
    input_languages: list[Language] | None = None
    input_description: Annotated[str, Field(min_length=1, max_length=10_000)]
    output_types: Annotated[list[DataType], Field(min_length=1)]
    output_languages: list[Language] | None = None
    output_description: Annotated[str, Field(min_length=1, max_length=10_000)]
    num_params: Annotated[int, BeforeValidator(_positive_whole_number), Field(gt=0)]
    index_page_file: str
    images: list[Annotated[str, AfterValidator(_image_file)]] | None = None

    @field_validator("index_page_file")
    @classmethod
    def _index_page(cls, value: str, info: ValidationInfo) -> str:
        return _require_file(value, info, suffixes=(".md",), what="index_page_file")


class RegistrationRequest(_Strict):
    config: ModelConfig = Field(alias="model_config")
    model_files: Annotated[dict[TargetPath, SourceUrl], Field(max_length=MAX_FILES)]
    model_metainfo: ModelMetainfo
    private_packages: Annotated[list[SourceUrl], Field(max_length=100)] | None = None

    def docker_registries(self) -> list[DockerRegistry]:
        props = [self.config.inference_properties, self.config.training_properties]
        return [p.docker_registry for p in props if p is not None and p.docker_registry is not None]


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


def _safe_key(key: str) -> str:
    # A key that is really a URL must not echo its query string (a SAS) back.
    return key.split("?", 1)[0] + ("?..." if "?" in key else "")


def _field_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        if part == "[key]":
            continue  # pydantic marks errors in a dict's key this way; the key itself is named
        if isinstance(part, int):
            path += f"[{part}]"
        elif path.startswith("model_files") or path.endswith("args"):
            path += f"[{_safe_key(part)!r}]"
        else:
            path += f".{part}" if path else part
    return path or "body"


def field_errors(error: ValidationError) -> list[FieldError]:
    """Each violation as (field, rule), never echoing the rejected value (it may hold a SAS)."""
    result = []
    for item in error.errors(include_url=False, include_input=False):
        rule = _FRIENDLY.get(item["type"], item["msg"])
        rule = rule.removeprefix("Value error, ")
        result.append(FieldError(_field_path(item["loc"]), rule))
    return result


def validate_identifiers(**values: str) -> None:
    errors = [FieldError(k, IDENTIFIER_RULE) for k, v in values.items() if not is_identifier(v)]
    if errors:
        raise InvalidRequest(errors)


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
        wants_languages = bool(LANGUAGE_TYPES.intersection(t for t in types if isinstance(t, str)))
        if wants_languages and not languages:
            errors.append(
                FieldError(
                    f"model_metainfo.{side}_languages",
                    f"required and non-empty when {side}_types includes SOURCE_CODE or NATURAL_LANGUAGE",
                )
            )
        if languages and not wants_languages:
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


def parse_registration(body: Any, context: RequestContext) -> RegistrationRequest:
    """Validate a decoded JSON body; raise InvalidRequest naming every violated field and rule."""
    validate_identifiers(name=context.name, version=context.version)
    if not isinstance(body, dict):
        raise InvalidRequest([FieldError("body", "must be a JSON object")])
    bound = bind_files(context, body.get("model_files"))
    cross_field = _cross_field_errors(body)
    if not bound.file_names:
        cross_field.append(FieldError("model_files", "at least one file is required"))
    elif len(bound.file_names) > MAX_FILES:
        cross_field.append(FieldError("model_files", f"at most {MAX_FILES} files"))
    try:
        request = RegistrationRequest.model_validate(body, context=bound)
    except ValidationError as error:
        raise InvalidRequest(field_errors(error) + cross_field) from None
    if cross_field:
        raise InvalidRequest(cross_field)
    return request


class ConfigChanges(_Strict):
    private: bool | None = None
    description: ShortText | None = None


class UpdateRequest(_Strict):
    """PATCH: any mix of visibility, description, metainfo fields and files to add or replace."""

    config: ConfigChanges | None = Field(default=None, alias="model_config")
    model_metainfo: dict[str, Any] | None = None
    model_files: Annotated[dict[TargetPath, SourceUrl], Field(max_length=MAX_FILES)] | None = None


class CloneRequest(_Strict):
    """PUT /model/clone/{name}/{version}: a new model from a parent the caller may see."""

    parent_version: str
    parent_owner: str
    model_files: Annotated[dict[TargetPath, SourceUrl], Field(max_length=MAX_FILES)] | None = None
    ignore_files: list[str] | None = None
    model_config_overrides: dict[str, Any] | None = Field(default=None, alias="model_config")
    model_metainfo: dict[str, Any] | None = None
    private_packages: Annotated[list[SourceUrl], Field(max_length=100)] | None = None


def parse_with(model: type[_Strict], body: Any, context: RequestContext) -> Any:
    """Validate a body against `model`, reporting violations as InvalidRequest."""
    if not isinstance(body, dict):
        raise InvalidRequest([FieldError("body", "must be a JSON object")])
    try:
        return model.model_validate(body, context=bind_files(context, body.get("model_files")))
    except ValidationError as error:
        raise InvalidRequest(field_errors(error)) from None
