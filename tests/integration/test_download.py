"""`python -m registry download` and `verify` against a real local HTTP server playing the registry
(tests/fakes/registry_api.py: manifest, keys, redirects with Repr-Digest, Range-capable reads), and
the downloaded directory checked by model-signing's own verifier (the PyPI package's CLI)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from registry.download import download_main, verify_main
from registry.signing import LocalKeySigner
from registry.signing.bundle import PAYLOAD_TYPE, pae
from tests.fakes.registry_api import FakeRegistryApi, Serving

ROOT = Path(__file__).resolve().parents[2]
MODEL_SIGNING = Path(sys.executable).parent / "model_signing"

FILES = {
    "config.json": b'{"layers": 2}',
    "weights/model.bin": os.urandom(3 * 1024 * 1024 + 17),
    "tokenizer/vocab.txt": b"a\nb\nc\n" * 1000,
    "empty.txt": b"",
}


@pytest.fixture
def signer() -> LocalKeySigner:
    return LocalKeySigner.generate()


@pytest.fixture
def api(signer: LocalKeySigner) -> Iterator[FakeRegistryApi]:
    with Serving(FakeRegistryApi.for_model(FILES, signer)) as serving:
        yield serving


def args(api: FakeRegistryApi, directory: Path, *extra: str) -> list[str]:
    return [
        api.name,
        api.version,
        api.owner,
        "--dir",
        str(directory),
        "--api",
        api.url,
        "--no-progress",
        *extra,
    ]


def model_signing_verify(
    directory: Path, public_pem: bytes, tmp_path: Path
) -> subprocess.CompletedProcess[str]:
    """`model_signing verify key --signature DIR/model.sig --public_key KEY.pem DIR`, as a user runs it."""
    key = tmp_path / "registry-signing-key.pem"
    key.write_bytes(public_pem)
    command = [str(MODEL_SIGNING), "verify", "key", "--signature", str(directory / "model.sig")]
    command += ["--public_key", str(key), str(directory)]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def test_a_downloaded_model_verifies_with_model_signings_own_verifier(
    api: FakeRegistryApi, signer: LocalKeySigner, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = tmp_path / "model"

    assert download_main(args(api, model)) == 0

    for path, data in FILES.items():
        assert (model / path).read_bytes() == data
    assert not list(model.rglob("*.part"))
    assert "every file verified" in capsys.readouterr().out
    checked = model_signing_verify(model, signer.public_key_pem(), tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "Verification succeeded" in checked.stdout
    assert verify_main([str(model), "--api", api.url]) == 0


def test_the_manifest_and_signature_are_written_beside_the_files(
    api: FakeRegistryApi, signer: LocalKeySigner, tmp_path: Path
) -> None:
    model = tmp_path / "model"
    assert download_main(args(api, model)) == 0

    assert json.loads((model / "model.sig").read_text()) == api.manifest["signature"]
    recorded = json.loads((model / "registry-manifest.json").read_text())
    assert recorded["files"] == api.manifest["files"] and "signature" not in recorded
    assert recorded["public_key_pem"] == signer.public_key_pem().decode()
    assert verify_main([str(model), "--offline"]) == 0


def test_a_file_altered_after_registration_fails_the_download_naming_it(
    api: FakeRegistryApi, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    altered = bytearray(FILES["weights/model.bin"])
    altered[1000] ^= 0xFF
    api.blobs["weights/model.bin"] = bytes(altered)
    api.repr_digests["weights/model.bin"] = hashlib.sha256(FILES["weights/model.bin"]).hexdigest()
    model = tmp_path / "model"

    assert download_main(args(api, model)) == 1

    errors = capsys.readouterr().err
    assert "weights/model.bin: sha256 " + hashlib.sha256(altered).hexdigest() in errors
    assert "config.json" not in errors  # the others are fine
    assert not (model / "weights/model.bin").exists() and not (model / "weights/model.bin.part").exists()
    assert (model / "config.json").read_bytes() == FILES["config.json"]


def test_a_file_whose_announced_digest_differs_from_the_signed_one_fails_naming_it(
    api: FakeRegistryApi, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    api.repr_digests["config.json"] = hashlib.sha256(b"something else").hexdigest()

    assert download_main(args(api, tmp_path / "model")) == 1

    assert "config.json: the registry announces sha256" in capsys.readouterr().err


def test_a_file_altered_on_disk_after_download_fails_verify_and_model_signing(
    api: FakeRegistryApi, signer: LocalKeySigner, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = tmp_path / "model"
    assert download_main(args(api, model)) == 0
    (model / "tokenizer/vocab.txt").write_bytes(b"changed")
    (model / "stray.bin").write_bytes(b"not part of the model")

    assert verify_main([str(model), "--api", api.url]) == 1

    errors = capsys.readouterr().err
    assert "tokenizer/vocab.txt: sha256" in errors and "stray.bin: not in the signed manifest" in errors
    assert "config.json" not in errors
    checked = model_signing_verify(model, signer.public_key_pem(), tmp_path)
    assert checked.returncode == 1 and "tokenizer/vocab.txt" in checked.stderr


def test_a_missing_file_fails_verify_naming_it(
    api: FakeRegistryApi, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = tmp_path / "model"
    assert download_main(args(api, model)) == 0
    (model / "empty.txt").unlink()

    assert verify_main([str(model), "--api", api.url]) == 1
    assert "empty.txt: missing" in capsys.readouterr().err


def test_a_tampered_manifest_fails_before_anything_is_downloaded(
    api: FakeRegistryApi, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    forged = hashlib.sha256(b"forged").hexdigest()
    api.manifest["files"] = [
        {**f, "sha256": forged} if f["path"] == "config.json" else f for f in api.manifest["files"]
    ]
    api.blobs["config.json"] = b"forged"
    model = tmp_path / "model"

    assert download_main(args(api, model)) == 1

    assert (
        "bad signature: the manifest's files differ from what is signed: config.json"
        in capsys.readouterr().err
    )
    assert sum(api.served.values()) == 0 and not model.exists()


def test_a_tampered_signature_fails_before_anything_is_downloaded(
    api: FakeRegistryApi, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sig = api.manifest["signature"]["dsseEnvelope"]["signatures"][0]
    sig["sig"] = sig["sig"][:-8] + ("AAAAAAA=" if not sig["sig"].endswith("AAAAAAA=") else "BBBBBBB=")

    assert download_main(args(api, tmp_path / "model")) == 1

    assert "bad signature" in capsys.readouterr().err
    assert sum(api.served.values()) == 0


def test_a_signature_for_another_model_is_refused(
    signer: LocalKeySigner, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    theirs = FakeRegistryApi.for_model(FILES, signer, name="other-model")
    with Serving(FakeRegistryApi.for_model(FILES, signer)) as api:
        api.manifest["signature"] = theirs.manifest["signature"]
        api.manifest["digest"] = theirs.manifest["digest"]
        assert download_main(args(api, tmp_path / "model")) == 1
    assert "name" in capsys.readouterr().err


def test_a_signature_by_a_key_the_registry_does_not_publish_is_refused(
    signer: LocalKeySigner, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with Serving(FakeRegistryApi.for_model(FILES, LocalKeySigner.generate())) as api:
        api.keys = FakeRegistryApi.for_model({}, signer).keys  # publishes another key
        assert download_main(args(api, tmp_path / "model")) == 1
    assert "not among the published keys" in capsys.readouterr().err


def test_after_a_key_rotation_a_model_signed_with_the_previous_key_still_downloads(tmp_path: Path) -> None:
    old, new = LocalKeySigner.generate(), LocalKeySigner.generate()
    with Serving(FakeRegistryApi.for_model(FILES, old)) as api:
        api.keys = FakeRegistryApi.for_model({}, new, previous_keys=(old.public_key_pem(),)).keys
        assert download_main(args(api, tmp_path / "model")) == 0
        assert verify_main([str(tmp_path / "model"), "--api", api.url]) == 0


def test_a_download_killed_mid_file_resumes_without_fetching_the_finished_part_again(
    api: FakeRegistryApi, signer: LocalKeySigner, tmp_path: Path
) -> None:
    big, size = "weights/model.bin", len(FILES["weights/model.bin"])
    api.stall_after[big] = 1024 * 1024 + 4096  # serve that much, then hold the download there
    model = tmp_path / "model"
    part = model / (big + ".part")
    command = [sys.executable, "-m", "registry", "download", *args(api, model)]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not (part.exists() and part.stat().st_size >= 1024 * 1024) and time.monotonic() < deadline:
            assert process.poll() is None, process.communicate()
            time.sleep(0.05)
        assert part.exists() and part.stat().st_size >= 1024 * 1024
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(30)
    kept = part.stat().st_size
    assert 0 < kept < size and not (model / big).exists()
    api.stall_after.clear()
    api.release.set()
    time.sleep(0.2)  # the held response ends
    api.served.clear()
    api.range_starts.clear()

    assert download_main(args(api, model)) == 0

    assert api.served[big] == size - kept, "only the bytes after the finished part are fetched again"
    assert (big, kept) in api.range_starts
    assert (model / big).read_bytes() == FILES[big]
    assert model_signing_verify(model, signer.public_key_pem(), tmp_path).returncode == 0


def test_a_second_run_after_a_finished_download_fetches_nothing(api: FakeRegistryApi, tmp_path: Path) -> None:
    model = tmp_path / "model"
    assert download_main(args(api, model)) == 0
    api.served.clear()

    assert download_main(args(api, model)) == 0
    assert sum(api.served.values()) == 0


def test_a_server_that_ignores_the_range_still_gives_a_verified_file(
    api: FakeRegistryApi, tmp_path: Path
) -> None:
    model = tmp_path / "model"
    (model / "weights").mkdir(parents=True)
    (model / "weights/model.bin.part").write_bytes(FILES["weights/model.bin"][:5000])
    api.ignore_ranges = True

    assert download_main(args(api, model)) == 0
    assert (model / "weights/model.bin").read_bytes() == FILES["weights/model.bin"]


def test_a_stale_part_with_wrong_bytes_is_caught_by_the_digest(
    api: FakeRegistryApi, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = tmp_path / "model"
    (model / "weights").mkdir(parents=True)
    (model / "weights/model.bin.part").write_bytes(b"\0" * 5000)  # not what the file starts with

    assert download_main(args(api, model)) == 1
    assert "weights/model.bin: sha256" in capsys.readouterr().err
    assert not (model / "weights/model.bin.part").exists()  # the next run starts that file afresh
    assert download_main(args(api, model)) == 0


def test_dev_mode_principal_headers_go_to_the_api_and_never_to_the_storage(
    signer: LocalKeySigner, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with Serving(FakeRegistryApi.for_model(FILES, signer)) as api:
        api.require_user = "alice"
        assert download_main(args(api, tmp_path / "anonymous")) == 2
        assert "HTTP 401" in capsys.readouterr().err

        assert download_main([*args(api, tmp_path / "model"), "--as", "alice"]) == 0
        assert api.storage_headers
        assert not any(k.lower().startswith("x-ms-client-principal") for h in api.storage_headers for k in h)


def test_a_signed_manifest_naming_a_path_outside_the_directory_is_refused(
    api: FakeRegistryApi, signer: LocalKeySigner, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Even signed by the registry's key (which never signs such a path), `../x` is not written."""
    bundle = api.manifest["signature"]
    statement = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    statement["predicate"]["resources"][0]["name"] = "../escaped.json"
    payload = json.dumps(statement).encode()
    bundle["dsseEnvelope"]["payload"] = base64.b64encode(payload).decode()
    bundle["dsseEnvelope"]["signatures"][0]["sig"] = base64.b64encode(
        signer.sign(pae(PAYLOAD_TYPE, payload))
    ).decode()
    api.manifest["digest"] = None
    api.manifest["files"][0]["path"] = "../escaped.json"

    assert download_main(args(api, tmp_path / "model")) == 1

    assert "relative path" in capsys.readouterr().err
    assert not (tmp_path / "escaped.json").exists()
