"""Response shapes of the HTTP API, as pydantic models (the OpenAPI document is generated from them)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class ErrorResponse(BaseModel):
    message: str
    error_message: str
    errors: list[dict[str, str]] | None = Field(
        default=None, description="each violated field and rule (400)"
    )


class MessageResponse(BaseModel):
    message: str


class AcceptedResponse(BaseModel):
    message: str
    status_url: str


class FileStatusView(BaseModel):
    name: str
    state: str
    bytes_copied: int
    size: int | None


class StatusResponse(BaseModel):
    name: str
    version: str
    owner: str
    state: str = Field(description="InProgress | Finished | Failed")
    message: str
    start_timestamp: str
    start_time: str
    last_updated_timestamp: str
    last_updated_time: str
    files: list[FileStatusView]


class ModelRef(BaseModel):
    name: str
    version: str
    owner: str


class ModelListItem(BaseModel):
    name: str
    version: str
    owner: str
    owner_name: str
    organization: str | None = None
    type: str
    description: str
    private: bool
    state: str
    trainable: bool
    parent_model: ModelRef | None = None


class ModelPage(BaseModel):
    models: list[ModelListItem]
    continuation: str | None = Field(description="pass as ?continuation= for the next page; null at the end")


class FileView(BaseModel):
    name: str
    size: int | None
    content_md5: str | None
    state: str


class ModelResponse(BaseModel):
    name: str
    version: str
    owner: str
    owner_name: str
    organization: str | None = None
    type: str
    description: str
    private: bool
    state: str
    message: str
    parent_model: ModelRef | None = None
    model_config_: dict[str, Any] = Field(alias="model_config")
    model_metainfo: dict[str, Any]
    files: list[FileView]
    created_at: str
    updated_at: str
    last_change: dict[str, Any] | None = None

    model_config = {"populate_by_name": True, "protected_namespaces": ()}
