"""Builders for tests: settings, request bodies, source URLs, and dependencies wired to fakes."""

from __future__ import annotations

import base64
import copy
from collections.abc import Callable
from typing import Any

from registry.bootstrap import build
from registry.domain.model import Registration
from registry.ports import EventSink, JobQueue, RegistrationStore, WebhookClient, WebhookStore
from registry.sealing import Sealer
from registry.services.dependencies import Dependencies
from registry.services.limits import Admission
from registry.settings import Settings, load_settings
from tests.fakes import (
    FakeBlobCopier,
    FakeClock,
    FakeJobQueue,
    FakeRegistrationStore,
    FakeWebhookClient,
    FakeWebhookStore,
)

TEST_SEALING_KEY = bytes(range(32))
SAS = "sv=2024-05-04&se=2030-01-01T00%3A00%3A00Z&sr=b&sp=r&sig=c2VjcmV0LXNpZ25hdHVyZQ%3D%3D"
DOCKER_PASSWORD = "hunter2-the-registry-password"


# --------------------------------------------------------------------------------------------
# Settings and request bodies
# --------------------------------------------------------------------------------------------


def settings_env(**overrides: str) -> dict[str, str]:
    env = {
        "AzureWebJobsStorage": "UseDevelopmentStorage=true",
        "REGISTRY_SEALING_KEY": base64.b64encode(TEST_SEALING_KEY).decode(),
    }
    env.update(overrides)
    return {k: v for k, v in env.items() if v is not None}


def make_settings(**overrides: str) -> Settings:
    """Settings for tests; pass app settings by name, e.g. make_settings(REGISTRY_DEV_MODE="true")."""
    return load_settings(settings_env(**overrides))


def source_url(blob: str, *, account: str = "storageaccount", container: str = "gptc") -> str:
    """A source URL on the default allow-list, with a SAS query that must never leak."""
    return f"https://{account}.blob.core.windows.net/{container}/{blob}?{SAS}"


def registration_body(**changes: Any) -> dict[str, Any]:
    """A small valid registration body. Keyword arguments replace top-level sections."""
    body: dict[str, Any] = {
        "model_config": {
            "type": "DECODER",
            "description": "A small test model",
            "inference_properties": {"entry_script": "score.py", "conda_env": "env.yml"},
        },
        "model_files": {
            "score.py": source_url("score.py"),
            "env.yml": source_url("env.yml"),
            "index.md": source_url("index.md"),
            "weights/model.bin": source_url("model.bin"),
        },
        "model_metainfo": {
            "input_types": ["SOURCE_CODE"],
            "input_languages": ["PYTHON"],
            "input_description": "Code before the cursor",
            "output_types": ["SOURCE_CODE"],
            "output_languages": ["PYTHON"],
            "output_description": "Generated code",
            "num_params": 125_000_000,
            "index_page_file": "index.md",
        },
    }
    body.update(copy.deepcopy(changes))
    return body


def deepdev_example_body() -> dict[str, Any]:
    """The DeepDev add_model_request example, with ARCHITECTURE.md's resolutions applied:
    index_page_file is a key of model_files, languages are plain lists of strings, and the
    visibility flag is model_config.private."""
    base = "https://storageaccount.blob.core.windows.net/gptc"
    files = {
        "inference.py": "my_inference_script.py",
        "inference.yml": "environment.yml",
        "train.py": "run_training.py",
        "train.yml": "training_env.yml",
        "model.pt": "checkpoint.pt",
        "vocab.model": "vocabulary.file",
        "index.md": "index.md",
    }
    image = "azureml/openmpi3.1.2-cuda10.1-cudnn7-ubuntu18.04"
    return {
        "model_config": {
            "type": "ENCODER",
            "description": (
                "Code generation decoder model trained on Python, C#, JavaScript and TypeScript dataset."
            ),
            "inference_properties": {
                "entry_script": "inference.py",
                "conda_env": "inference.yml",
                "docker_image": image,
                "docker_registry": {
                    "url": "mcr.microsoft.com",
                    "username": "foo",
                    "password": DOCKER_PASSWORD,
                },
            },
            "training_properties": {
                "entry_script": "train.py",
                "args": {"--learning_rate": 0.001, "-v": ""},
                "conda_env": "train.yml",
                "docker_image": image,
            },
            "private": True,
        },
        "model_files": {key: f"{base}/{blob}?{SAS}" for key, blob in files.items()},
        "model_metainfo": {
            "input_types": ["SOURCE_CODE"],
            "input_languages": ["CSHARP"],
            "input_description": "Code context before the generation point",
            "output_types": ["SOURCE_CODE"],
            "output_languages": ["CSHARP"],
            "output_description": "Generated code",
            "num_params": 50000000,
            "index_page_file": "index.md",
        },
        "private_packages": [f"{base}/private_package.whl?{SAS}"],
    }


def make_deps(
    settings: Settings | None = None,
    *,
    store: RegistrationStore | None = None,
    queue: JobQueue | None = None,
    blobs: FakeBlobCopier | None = None,
    now: FakeClock | None = None,
    sealer: Sealer | None = None,
    monotonic: Callable[[], float] | None = None,
    webhooks: WebhookStore | None = None,
    webhook_client: WebhookClient | None = None,
    event_sinks: tuple[EventSink, ...] = (),
) -> Dependencies:
    """Dependencies on fakes (each made fresh unless given); no rate limit."""
    blobs = blobs or FakeBlobCopier()
    return build(
        settings or make_settings(),
        store=store or FakeRegistrationStore(),
        queue=queue or FakeJobQueue(),
        webhooks=webhooks if webhooks is not None else FakeWebhookStore(),
        webhook_client=webhook_client if webhook_client is not None else FakeWebhookClient(),
        copier=blobs,
        files=blobs,
        sealer=sealer or Sealer(TEST_SEALING_KEY),
        admission=Admission(),
        now=now or FakeClock(),
        event_sinks=event_sinks,
        **({"monotonic": monotonic} if monotonic else {}),
    )


def served_bytes(
    store: FakeRegistrationStore, blobs: FakeBlobCopier, registration: Registration, target: str
) -> bytes | None:
    """The bytes the registry serves for a file: its verified generation's blob (None if none)."""
    row = next((p for p in store.peek_files(registration) if p.target == target), None)
    if row is None or not row.served:
        return None
    return blobs.blob(registration.blob_path(target, row.served_generation))
