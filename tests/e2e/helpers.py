"""Helpers shared by the end-to-end tests: request bodies, waiting, downloads, direct records."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from typing import Any

import httpx

from registry.domain.model import Registration, utcnow
from registry.domain.vocabulary import State
from tests.conftest import Sources

MIB = 1024 * 1024
BASE_FILES = {"score.py": b"def init(d): pass\n", "env.yml": b"name: e\n", "index.md": b"# m\n"}


def body(
    sources: Sources,
    files: dict[str, bytes] | None = None,
    *,
    tag: str = "",
    private: bool | None = None,
    description: str | None = None,
) -> dict[str, Any]:
    """A valid registration body; `tag` keeps each model's source blobs apart in the container."""
    everything = {**BASE_FILES, **(files or {})}
    tag = tag or uuid.uuid4().hex[:8]
    config: dict[str, Any] = {
        "type": "SEQ2SEQ",
        "inference_properties": {"entry_script": "score.py", "conda_env": "env.yml"},
    }
    if private is not None:
        config["private"] = private
    if description is not None:
        config["description"] = description
    return {
        "model_config": config,
        "model_files": {name: sources.upload(f"{tag}/{name}", data) for name, data in everything.items()},
        "model_metainfo": {
            "input_types": ["SOURCE_CODE"],
            "input_languages": ["python"],
            "input_description": "code",
            "output_types": ["NATURAL_LANGUAGE"],
            "output_languages": ["en"],
            "output_description": "summary",
            "num_params": 125_000_000,
            "index_page_file": "index.md",
        },
    }


def wait(client: httpx.Client, status_url: str, timeout: float = 60) -> dict[str, Any]:
    """Poll a status URL until the registration leaves InProgress."""
    deadline = time.monotonic() + timeout
    status: dict[str, Any] = {}
    while time.monotonic() < deadline:
        status = client.get(status_url).json()
        if status["state"] != "InProgress":
            return status
        time.sleep(0.1)
    raise AssertionError(f"still InProgress after {timeout}s: {status}")


def register(client: httpx.Client, name: str, version: str, request: dict[str, Any]) -> dict[str, Any]:
    """PUT a model and wait for its copy to end; returns the final status."""
    response = client.put(f"/api/v1.0/model/{name}/{version}", json=request)
    assert response.status_code == 202, response.text
    return wait(client, response.headers["Location"])


def download(redirect: httpx.Response) -> bytes:
    """Follow a 302 to a SAS URL with a plain GET (no principal headers: the SAS is the key)."""
    assert redirect.status_code == 302, redirect.text
    response = httpx.get(redirect.headers["Location"], timeout=30)
    assert response.status_code == 200, response.text
    return response.content


def fetch(client: httpx.Client, name: str, version: str, owner: str, path: str) -> bytes:
    """A registered file's bytes, as a reader gets them: the files route, then its SAS URL."""
    return download(
        client.get(f"/api/v1.0/model/{name}/{version}/{owner}/files/{path}", follow_redirects=False)
    )


def record(
    *,
    owner: str,
    name: str,
    version: str,
    private: bool = False,
    finished: bool = True,
    model_type: str = "SEQ2SEQ",
    trainable: bool = False,
    input_types: Iterable[str] = ("SOURCE_CODE",),
    output_types: Iterable[str] = ("NATURAL_LANGUAGE",),
    languages: Iterable[str] = ("python",),
    description: str = "",
) -> Registration:
    """A registration as the services would record it, for inserting through the store directly."""
    inputs, outputs, langs = list(input_types), list(output_types), list(languages)
    config: dict[str, Any] = {
        "type": model_type,
        "description": description,
        "private": private,
        "inference_properties": {"entry_script": "score.py", "conda_env": "env.yml"},
    }
    if trainable:
        config["training_properties"] = {"entry_script": "score.py", "conda_env": "env.yml"}
    meta: dict[str, Any] = {
        "input_types": inputs,
        "input_description": "in",
        "output_types": outputs,
        "output_description": "out",
        "num_params": 1,
        "index_page_file": "index.md",
    }
    if {"SOURCE_CODE", "NATURAL_LANGUAGE"} & set(inputs):
        meta["input_languages"] = langs
    if {"SOURCE_CODE", "NATURAL_LANGUAGE"} & set(outputs):
        meta["output_languages"] = langs
    now = utcnow()
    return Registration(
        owner=owner,
        name=name,
        version=version,
        owner_name=owner,
        registration_id=uuid.uuid4().hex,
        state=State.FINISHED if finished else State.IN_PROGRESS,
        message="",
        private=private,
        model_type=model_type,
        description=description,
        body_digest="",
        document={"model_config": config, "model_files": {}, "model_metainfo": meta},
        file_names=[],
        sealed=b"",
        created_at=now,
        updated_at=now,
        last_progress_at=now,
        finished_once=finished,
    )
