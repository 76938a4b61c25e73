"""A verified download, end to end: register on the local host (signing with a local key), then
`python -m registry download` fetches the signed manifest and every file, and model-signing's own
CLI accepts the directory with the key the registry publishes, and refuses it once a byte changes."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.conftest import Sources
from tests.e2e.conftest import LocalHost
from tests.e2e.helpers import MIB, body, register

API = "/api/v1.0"
MODEL_SIGNING = Path(sys.executable).parent / "model_signing"
REGISTRY_CLI = Path(sys.executable).parent / "registry"
FILES = {"weights/model.bin": os.urandom(3 * MIB + 5), "tokenizer/vocab.txt": b"a\nb\n" * 500}


@pytest.fixture(scope="module")
def signing_host(host_env: dict[str, str]) -> Iterator[LocalHost]:
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with LocalHost(host_env | {"REGISTRY_SIGNING_KEY": base64.b64encode(pem).decode()}) as host:
        yield host


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)


def test_a_registered_model_downloads_verified_and_model_signing_accepts_it(
    signing_host: LocalHost, sources: Sources, tmp_path: Path
) -> None:
    name = f"signed-{uuid.uuid4().hex[:8]}"
    with signing_host.client("alice") as alice:
        assert register(alice, name, "1", body(sources, FILES))["state"] == "Finished"
        manifest = alice.get(f"{API}/model/{name}/1/alice/manifest").json()
        keys = alice.get(f"{API}/signing-keys").json()
    assert manifest["key_id"] in keys["pem"] and manifest["signature"]
    key_file = tmp_path / "registry.pem"
    key_file.write_text(keys["pem"][manifest["key_id"]])

    model = tmp_path / "model"
    api = signing_host.url
    # The `registry` command line (OWNER defaults to the caller); `python -m registry verify` below.
    fetched = _run(str(REGISTRY_CLI), "download", name, "1", "--dir", str(model),
                   "--api", api, "--as", "alice", "--no-progress")  # fmt: skip
    assert fetched.returncode == 0, fetched.stderr
    for path, data in FILES.items():
        assert (model / path).read_bytes() == data

    signature = ["--signature", str(model / "model.sig"), "--public_key", str(key_file), str(model)]
    accepted = _run(str(MODEL_SIGNING), "verify", "key", *signature)
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    verify = (sys.executable, "-m", "registry", "verify", str(model), "--api", api, "--as", "alice")
    assert _run(*verify).returncode == 0

    (model / "tokenizer/vocab.txt").write_bytes(b"a\nb\n" * 499 + b"a\nc\n")  # one byte changed
    assert _run(str(MODEL_SIGNING), "verify", "key", *signature).returncode != 0
    refused = _run(*verify)
    assert refused.returncode == 1 and "tokenizer/vocab.txt" in refused.stderr
