"""The Key Vault signer against a real vault key.

Runs only when SIGNING_KEY_VAULT_KEY_ID names an EC P-256 key with its version
(https://<vault>.vault.azure.net/keys/<name>/<version>), reached with your Azure login through
DefaultAzureCredential (you need Key Vault Crypto User on the key, as the app has). Skipped
otherwise. It signs a manifest through the vault and checks the result with our verifier and with
model-signing's own CLI on a directory holding the files.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from registry.signing import (
    MANIFEST_FILE,
    SIGNATURE_FILE,
    FileDigest,
    KeyVaultSigner,
    sign_manifest,
    verify_manifest_signature,
)

KEY_ID = os.environ.get("SIGNING_KEY_VAULT_KEY_ID", "")

pytestmark = pytest.mark.skipif(
    not KEY_ID,
    reason="live Key Vault signing test: set SIGNING_KEY_VAULT_KEY_ID to a key URI with its version",
)


def test_a_manifest_signed_through_key_vault_verifies_with_model_signing(tmp_path: Path) -> None:
    from azure.identity import DefaultAzureCredential

    signer = KeyVaultSigner.connect(KEY_ID, DefaultAzureCredential())
    files = {"config.json": b"{}", "weights/model.bin": os.urandom(4096)}
    model = tmp_path / "model"
    for path, data in files.items():
        (model / path).parent.mkdir(parents=True, exist_ok=True)
        (model / path).write_bytes(data)
    digests = [FileDigest(p, len(d), hashlib.sha256(d).hexdigest()) for p, d in files.items()]

    signed = sign_manifest(digests, signer, subject="live", registry={"name": "live", "revision": 1})

    verified = verify_manifest_signature(signed.bundle, {signer.key_id: signer.public_key_pem()})
    assert verified.files == {d.path: d.sha256 for d in digests}
    (model / SIGNATURE_FILE).write_text(json.dumps(signed.bundle))
    (model / MANIFEST_FILE).write_text("{}")
    key = tmp_path / "key.pem"
    key.write_bytes(signer.public_key_pem())
    cli = Path(sys.executable).parent / "model_signing"
    command = [
        str(cli),
        "verify",
        "key",
        "--signature",
        str(model / SIGNATURE_FILE),
        "--public_key",
        str(key),
    ]
    checked = subprocess.run([*command, str(model)], capture_output=True, text=True, timeout=120, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr
