"""What lists show and how they are filtered and ordered."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from registry.domain.vocabulary import DataType, ModelType


@dataclass(frozen=True)
class ModelFilter:
    """List filters; None means "any"."""

    name: str | None = None
    version: str | None = None
    owner: str | None = None
    type: ModelType | None = None
    trainable: bool | None = None
    input_type: DataType | None = None
    output_type: DataType | None = None
    language: str | None = None  # matched lower-cased against input and output languages


@dataclass(frozen=True)
class ModelSummary:
    """One model in a list: what listing shows, read without the model's full document."""

    name: str
    version: str
    owner: str
    owner_name: str
    type: str
    description: str
    private: bool
    state: str
    trainable: bool
    languages: tuple[str, ...]
    parent_model: dict[str, str] | None
    created_at: datetime
    updated_at: datetime

    @property
    def sort_key(self) -> str:
        return sort_key(self.name, self.version, self.owner)


def sort_key(name: str, version: str, owner: str = "") -> str:
    """Keys that sort as the (name, version, owner) tuple does: '!' sorts below every character a
    name, version or owner may hold."""
    return f"{name}!{version}!{owner}" if owner else f"{name}!{version}"
