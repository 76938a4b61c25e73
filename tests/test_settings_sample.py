"""local.settings.sample.json lists every setting the code reads, and nothing it does not."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from registry.settings import load_settings

SAMPLE = Path(__file__).resolve().parents[1] / "local.settings.sample.json"
# Read by the Functions host (or set by App Service), not by the registry's code.
PLATFORM = {"FUNCTIONS_WORKER_RUNTIME", "AzureWebJobsFeatureFlags"}
INJECTED_IN_AZURE = {"WEBSITE_INSTANCE_ID", "WEBSITE_SITE_NAME", "WEBSITE_AUTH_ENABLED", "WEBSITE_HOSTNAME"}


class RecordingSettings(dict[str, str]):
    """App settings that remember which keys the code looked up."""

    def __init__(self, values: dict[str, str]) -> None:
        super().__init__(values)
        self.read: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:
        self.read.add(key)
        return super().get(key, default)

    def __getitem__(self, key: str) -> str:
        self.read.add(key)
        return super().__getitem__(key)

    def __contains__(self, key: object) -> bool:
        self.read.add(str(key))
        return super().__contains__(key)


def test_the_sample_holds_exactly_the_settings_the_code_reads() -> None:
    values = json.loads(SAMPLE.read_text())["Values"]
    recording = RecordingSettings(values)

    load_settings(recording)

    assert recording.read - INJECTED_IN_AZURE <= set(values), "read by the code, missing from the sample"
    assert set(values) - PLATFORM <= recording.read, "in the sample, never read by the code"
