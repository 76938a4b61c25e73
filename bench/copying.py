"""What both copy benchmarks share: the model's sources, and the worker driven to the end of a copy."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from registry.domain.model import Registration
from registry.identity import Principal
from registry.services.copying import Outcome, process_job
from registry.services.dependencies import Dependencies
from registry.services.registration import job_for, register

MODEL = "bench-copy"
OWNER = Principal("bench-owner", "Bench Owner")
SMALL_FILES = {
    "score.py": b"model = None\n\ndef init(model_dir):\n    global model\n    model = model_dir\n",
    "environment.yml": b"name: bench\ndependencies:\n  - python=3.11\n",
    "index.md": b"# Benchmark model\n\nRandom weights, copied to measure the worker.\n",
}


def worker_settings(connection_string: str, sealing_key: str) -> dict[str, str]:
    """App settings for the worker: the default copy policy (8 MiB blocks, 8 in flight)."""
    suffix = uuid.uuid4().hex[:8]
    return {
        "AzureWebJobsStorage": connection_string,
        "REGISTRY_SEALING_KEY": sealing_key,
        "REGISTRY_DEV_MODE": "true",
        "REGISTRY_ALLOW_INSECURE_SOURCES": "true",
        "REGISTRY_MODELS_CONTAINER": "models",
        "REGISTRY_REGISTRATIONS_TABLE": f"benchregs{suffix}",
        "REGISTRY_FILES_TABLE": f"benchfiles{suffix}",
    }


def request_body(urls: Mapping[str, str]) -> dict[str, Any]:
    return {
        "model_config": {
            "type": "DECODER",
            "description": "A benchmark model of random weights",
            "inference_properties": {"entry_script": "score.py", "conda_env": "environment.yml"},
        },
        "model_files": dict(urls),
        "model_metainfo": {
            "input_types": ["OTHER"],
            "output_types": ["OTHER"],
            "input_description": "tensors",
            "output_description": "tensors",
            "num_params": 1_000_000,
            "index_page_file": "index.md",
        },
    }


def register_model(deps: Dependencies, version: str, urls: Mapping[str, str]) -> Registration:
    return register(
        body=request_body(urls),
        name=MODEL,
        version=version,
        caller=OWNER,
        store=deps.store,
        queue=deps.queue,
        sealer=deps.sealer,
        settings=deps.settings,
    )


@dataclass
class WorkerRun:
    invocations: int
    outcomes: list[str]


def copy_to_the_end(deps: Dependencies, registration: Registration, max_invocations: int = 100) -> WorkerRun:
    """Call the worker as the queue trigger would, continuation after continuation, until FINISHED."""
    outcomes: list[str] = []
    for _ in range(max_invocations):
        outcome = process_job(
            job_for(registration),
            store=deps.store,
            queue=deps.queue,
            copier=deps.copier,
            sealer=deps.sealer,
            policy=deps.copy_policy,
        )
        outcomes.append(outcome.value)
        if outcome is Outcome.FINISHED:
            return WorkerRun(len(outcomes), outcomes)
        if outcome is not Outcome.CONTINUED:
            reread = deps.store.get(registration.owner, registration.name, registration.version)
            message = reread.message if reread else "registration vanished"
            raise RuntimeError(f"the worker ended with {outcome.value}: {message}")
    raise RuntimeError(f"the copy did not finish in {max_invocations} invocations")
