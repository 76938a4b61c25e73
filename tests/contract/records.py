"""Registrations to store in the contract suite, built through the domain model (no store involved)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from registry.domain.listing import sort_key
from registry.domain.model import ModelKey, Registration
from registry.domain.vocabulary import DataType, ModelType
from tests.builders import source_url
from tests.fakes import T0


def registration(
    owner: str = "alice",
    name: str = "bert",
    version: str = "1.0",
    *,
    model_type: ModelType = ModelType.DECODER,
    description: str = "a model",
    private: bool = False,
    trainable: bool = False,
    input_types: Sequence[DataType] = (DataType.SOURCE_CODE,),
    output_types: Sequence[DataType] = (DataType.SOURCE_CODE,),
    input_languages: Sequence[str] = ("PYTHON",),
    output_languages: Sequence[str] = (),
    finished: bool = False,
    now: datetime = T0,
) -> Registration:
    """A newly accepted registration (finished, if asked) with these listing columns."""
    config: dict[str, Any] = {
        "type": model_type.value,
        "description": description,
        "private": private,
        "inference_properties": {"entry_script": "score.py", "conda_env": "env.yml"},
    }
    if trainable:
        config["training_properties"] = {"entry_script": "train.py", "conda_env": "env.yml"}
    metainfo: dict[str, Any] = {
        "input_types": [t.value for t in input_types],
        "output_types": [t.value for t in output_types],
        "input_description": "in",
        "output_description": "out",
        "num_params": 1,
        "index_page_file": "index.md",
    }
    if input_languages:
        metainfo["input_languages"] = list(input_languages)
    if output_languages:
        metainfo["output_languages"] = list(output_languages)
    document = {
        "model_config": config,
        "model_files": {"index.md": source_url("index.md").split("?")[0]},
        "model_metainfo": metainfo,
    }
    accepted = Registration.accept(
        ModelKey(owner, name, version), owner_name=owner.title(), document=document, now=now
    )
    if finished:
        accepted.finish(now, "Finished")
    return accepted


def own_key(r: Registration) -> str:
    """The `after` of an owner's listing: the key without the owner."""
    return sort_key(r.name, r.version)


def public_key(r: Registration) -> str:
    return sort_key(r.name, r.version, r.owner)
