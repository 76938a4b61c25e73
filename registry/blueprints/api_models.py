"""The HTTP API's query and response shapes, as pydantic models.

Handlers answer with these models and the OpenAPI document is generated from them, so the two
cannot drift. Fields that may be absent are left out of an answer rather than sent as null, as
DeepDev's published schemas (which type them as string or object) expect.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema

from registry.domain.events import EventType
from registry.domain.model import DELETED
from registry.domain.vocabulary import DataType, ModelType, State
from registry.validation import Identifier


def _absent(value: Any) -> bool:
    return value is None


def _no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)  # absent, not null: the schema shows only the present form


def Optional(**kwargs: Any) -> Any:  # noqa: N802 - reads as a type where it is used
    """A field left out of the answer when it has no value."""
    return Field(default=None, exclude_if=_absent, json_schema_extra=_no_default, **kwargs)


def _true_or_false(value: Any) -> Any:
    """A query string's boolean is spelled true or false (not yes, 1, on ...)."""
    if value not in ("true", "false", True, False):
        raise ValueError("must be true or false")
    return value in ("true", True)


_REGISTRATION_STATES = [s.value for s in State if s is not State.DELETING]
RegistrationState = Annotated[
    str, Field(json_schema_extra={"enum": _REGISTRATION_STATES}, description=" | ".join(_REGISTRATION_STATES))
]


class ListQuery(BaseModel):
    """GET /models: the filters (each optional) and paging."""

    model_config = ConfigDict(extra="forbid")

    name: Identifier | None = Field(default=None, description="Only this name")
    version: Identifier | None = Field(default=None, description="Only this version")
    owner: Identifier | None = Field(default=None, description="Only this owner (principal id)")
    type: ModelType | None = Field(default=None, description="Only this architecture")
    trainable: Annotated[bool, BeforeValidator(_true_or_false)] | None = Field(
        default=None, description="Only models with (true) or without (false) training_properties"
    )
    input_type: DataType | None = Field(default=None, description="Only models taking this type of input")
    output_type: DataType | None = Field(
        default=None, description="Only models producing this type of output"
    )
    language: Annotated[str, Field(min_length=1, max_length=64)] | None = Field(
        default=None, description="Only models with this input or output language (any case)"
    )
    limit: Annotated[int, Field(ge=1, le=1000)] | None = Field(
        default=None, description="Page size (default 100); given, the answer is a page object"
    )
    continuation: Annotated[str, Field(min_length=1, max_length=4096)] | None = Field(
        default=None, description="The token of the previous page (same filters)"
    )


class FieldRule(BaseModel):
    field: str
    rule: str


class ErrorResponse(BaseModel):
    message: str
    error_message: str
    errors: list[FieldRule] | SkipJsonSchema[None] = Optional(
        description="each violated field and rule (400)"
    )


class MessageResponse(BaseModel):
    message: str


class AcceptedResponse(BaseModel):
    message: str
    status_url: str


class FileStatus(BaseModel):
    name: str
    state: str
    phase: str = Field(description="pending | copying | hashing | done | failed")
    bytes_copied: int
    bytes_hashed: int = Field(description="of the registry's own copy, read back to compute its SHA-256")
    size: int | None
    sha256: str | SkipJsonSchema[None] = Optional(description="once the file is done")


class StatusResponse(BaseModel):
    name: str
    version: str
    owner: str
    state: RegistrationState
    message: str
    start_timestamp: str
    start_time: str
    last_updated_timestamp: str
    last_updated_time: str
    files: list[FileStatus]


class ModelRef(BaseModel):
    name: str
    version: str
    owner: str


class ModelListItem(BaseModel):
    name: str
    version: str
    owner: str
    owner_name: str
    organization: str | SkipJsonSchema[None] = Optional()
    type: ModelType | SkipJsonSchema[None] = Optional(
        description="absent for a registration that was never valid"
    )
    description: str
    private: bool
    state: RegistrationState
    trainable: bool
    parent_model: ModelRef | SkipJsonSchema[None] = Optional()


class ModelPage(BaseModel):
    models: list[ModelListItem]
    continuation: str | None = Field(description="pass as ?continuation= for the next page; null at the end")


class FileView(BaseModel):
    name: str
    size: int | None = Field(description="of the bytes served (during an update: the previous version's)")
    sha256: str | SkipJsonSchema[None] = Optional(
        description="SHA-256 of the bytes served, computed by the registry"
    )
    content_md5: str | None
    state: str


class ModelResponse(BaseModel):
    model_config = ConfigDict(populate_by_name=True, protected_namespaces=())

    name: str
    version: str
    owner: str
    owner_name: str
    organization: str | SkipJsonSchema[None] = Optional()
    type: ModelType | SkipJsonSchema[None] = Optional()
    description: str
    private: bool
    state: RegistrationState
    message: str
    parent_model: ModelRef | SkipJsonSchema[None] = Optional()
    model_config_: dict[str, Any] = Field(alias="model_config")
    model_metainfo: dict[str, Any]
    files: list[FileView]
    created_at: str
    updated_at: str
    last_change: dict[str, Any] | SkipJsonSchema[None] = Optional()


class ManifestQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    revision: Annotated[int, Field(ge=1)] | None = Field(
        default=None, description="a revision (default: the latest)"
    )


class ManifestFileView(BaseModel):
    path: str
    size: int
    sha256: str


class ManifestResponse(BaseModel):
    """A revision of a model version's files, as the registry verified them, with its signature."""

    name: str
    version: str
    owner: str
    revision: int
    files: list[ManifestFileView]
    parent: ModelRef | SkipJsonSchema[None] = Optional()
    created_at: str
    finished_at: str
    digest: str = Field(
        description="sha256:<hex> of this document without digest, key_id and signature (RFC 8785)"
    )
    key_id: str = Field(description="the signing key (see /signing-keys)")
    signature: dict[str, Any] | SkipJsonSchema[None] = Optional(
        description="an OpenSSF model-signing bundle (Sigstore bundle, DSSE-signed in-toto statement)"
    )


class SigningKey(BaseModel):
    """A public key as a JWK (RFC 7517): EC P-256, ES256."""

    model_config = ConfigDict(extra="allow")

    kty: str
    crv: str
    x: str
    y: str
    kid: str = Field(description="the key id: the SHA-256 of its PEM (model-signing's public key hint)")
    alg: str
    use: str


class SigningKeys(BaseModel):
    keys: list[SigningKey] = Field(description="the current key first, then earlier ones")
    pem: dict[str, str] = Field(description="key id -> the public key as PEM (for model_signing verify key)")


class ManifestEntry(BaseModel):
    revision: int
    digest: str
    finished_at: str
    by: str


class ManifestList(BaseModel):
    manifests: list[ManifestEntry] = Field(description="newest first")


_EVENT_KINDS = [t.short for t in EventType]
_EVENT_STATES = [*_REGISTRATION_STATES, DELETED]
EventState = Annotated[
    str, Field(json_schema_extra={"enum": _EVENT_STATES}, description=" | ".join(_EVENT_STATES))
]
EventKind = Annotated[
    str, Field(json_schema_extra={"enum": _EVENT_KINDS}, description=" | ".join(_EVENT_KINDS))
]


class HistoryQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    limit: Annotated[int, Field(ge=1, le=1000)] | None = Field(
        default=None, description="Page size (default 100)"
    )
    continuation: Annotated[str, Field(min_length=1, max_length=2048)] | None = Field(
        default=None, description="The token of the previous page"
    )


class HistoryEntry(BaseModel):
    """One change: what happened, when, by whom, and what it changed."""

    id: str = Field(description="the event's id (the CloudEvents id webhooks and Event Grid carry)")
    type: EventKind
    time: str
    by: str = Field(description="who made the change: the owner, or `registry` for the copy's outcome")
    state: EventState
    message: str
    changes: dict[str, Any] | SkipJsonSchema[None] = Optional(
        description="updated: each changed setting's from and to (metainfo: the keys changed)"
    )
    files: list[str] | SkipJsonSchema[None] = Optional(description="files_replaced: the files")
    revision: int | SkipJsonSchema[None] = Optional(description="finished: the manifest revision")
    manifest_digest: str | SkipJsonSchema[None] = Optional(description="finished: the manifest's digest")
    parent: ModelRef | SkipJsonSchema[None] = Optional(description="cloned: the model cloned")


class HistoryPageResponse(BaseModel):
    events: list[HistoryEntry] = Field(description="newest first")
    continuation: str | SkipJsonSchema[None] = Optional(description="the next page's token")


class StatusQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    wait: Annotated[int, Field(ge=0, le=60)] | None = Field(
        default=None,
        description="Answer as soon as the state or progress changes, or after this many seconds",
    )
