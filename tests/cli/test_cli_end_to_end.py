"""`registry` end to end: the console script against Azurite and the local host, as after `make run`."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import ResourceNotFoundError

from devhost.azurite import OWNER_ACCOUNT, Azurite
from tests.cli.conftest import MODEL_YAML, RATE_LIMITS, Cli, model_folder

pytestmark = pytest.mark.e2e
MIB = 1024 * 1024


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class Registered:
    name: str
    version: str
    folder: Path
    files: dict[str, bytes]  # every model file, by its name in the model
    result: dict[str, Any]  # the first run's --json output


@pytest.fixture(scope="module")
def registered(cli: Cli, tmp_path_factory: pytest.TempPathFactory) -> Registered:
    """alice registers a folder with a nested path and a 50 MiB file (private, the default)."""
    extra = {"weights/layer1/model.bin": os.urandom(50 * MIB), "tokenizer/vocab.txt": b"a\nb\nc\n"}
    folder = model_folder(tmp_path_factory.mktemp("model") / "m", extra)
    name, version = f"cli-{uuid.uuid4().hex[:8]}", "1.0"
    done = cli.run("register", str(folder), "--name", name, "--version", version, "--json")
    assert done.returncode == 0, done.stderr
    files = {
        path.relative_to(folder).as_posix(): path.read_bytes() for path in folder.rglob("*") if path.is_file()
    }
    del files["model.yaml"]
    return Registered(name, version, folder, files, json.loads(done.stdout))


def test_register_of_a_folder_with_a_nested_path_and_a_50_mib_file_finishes_with_identical_bytes(
    cli: Cli, registered: Registered
) -> None:
    status = registered.result["status"]
    assert status["state"] == "Finished", status
    assert {f["name"] for f in status["files"]} == set(registered.files)
    assert registered.result["replay"] is False
    assert registered.result["upload"]["bytes_sent"] == sum(len(d) for d in registered.files.values())
    for target, data in registered.files.items():
        copied = cli.download("alice", registered.name, registered.version, target)
        assert digest(copied) == digest(data), target


def test_a_rerun_uploads_nothing_and_the_registry_answers_it_as_a_replay(
    cli: Cli, registered: Registered
) -> None:
    with cli.http() as http:
        before = http.get(f"/api/v1.0/model/{registered.name}/{registered.version}/status").json()
    done = cli.run(
        "register",
        str(registered.folder),
        "--name",
        registered.name,
        "--version",
        registered.version,
        "--json",
    )
    assert done.returncode == 0, done.stderr
    again = json.loads(done.stdout)
    assert again["upload"]["bytes_sent"] == 0
    assert sorted(again["upload"]["skipped"]) == sorted(registered.files)
    assert again["replay"] is True
    assert again["registration"]["message"].endswith("accepted: Finished")  # no new copy was started
    assert again["status"]["start_timestamp"] == before["start_timestamp"]  # the same registration


def _wait_for_staged_blocks(cli: Cli, blob: str, at_least: int, process: subprocess.Popen[str]) -> None:
    client = cli.owner_container.get_blob_client(blob)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and process.poll() is None:
        try:
            _, uncommitted = client.get_block_list("uncommitted")
        except ResourceNotFoundError:
            uncommitted = []
        if len(uncommitted) >= at_least:
            return
        time.sleep(0.02)
    raise AssertionError(f"no {at_least} blocks of {blob} were staged while the CLI ran")


def _bytes_in_storage(cli: Cli, prefix: str) -> tuple[int, int]:
    """(bytes of committed blobs, bytes of staged uncommitted blocks) under `prefix`."""
    committed = sum(b.size for b in cli.owner_container.list_blobs(name_starts_with=prefix))
    staged = 0
    for blob in cli.owner_container.list_blobs(name_starts_with=prefix, include=["uncommittedblobs"]):
        _, uncommitted = cli.owner_container.get_blob_client(blob.name).get_block_list("uncommitted")
        staged += sum(block.size for block in uncommitted)
    return committed, staged


def test_a_cli_killed_mid_upload_resumes_and_sends_only_what_was_missing(cli: Cli, tmp_path: Path) -> None:
    big = os.urandom(50 * MIB)
    folder = model_folder(tmp_path / "m", {"nested/dir/big.bin": big})
    name, version = f"cli-{uuid.uuid4().hex[:8]}", "2"
    args = ("register", str(folder), "--name", name, "--version", version, "--block-size", "4", "--json")
    first = subprocess.Popen(
        cli.command(*args, "--limit-rate", "16M", "--as", "alice"),
        env=cli.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        _wait_for_staged_blocks(cli, f"{name}/{version}/nested/dir/big.bin", 3, first)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    committed, staged = _bytes_in_storage(cli, f"{name}/{version}/")
    total = sum(
        path.stat().st_size for path in folder.rglob("*") if path.is_file() and path.name != "model.yaml"
    )
    assert 0 < staged < len(big), "the kill must land mid-way through the big file"
    assert cli.run("status", name, version).returncode == 3  # nothing was registered by the killed run

    done = cli.run(*args)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    outcomes = {f["name"]: f for f in result["upload"]["files"]}
    assert outcomes["nested/dir/big.bin"]["outcome"] == "resumed"
    assert result["upload"]["bytes_sent"] == total - committed - staged
    assert result["status"]["state"] == "Finished"
    copied = cli.download("alice", name, version, "nested/dir/big.bin")
    assert digest(copied) == digest(big)


def test_a_bad_model_yaml_is_refused_with_the_apis_field_rules_before_any_upload(
    cli: Cli, tmp_path: Path
) -> None:
    bad = MODEL_YAML.replace("type: DECODER", "type: HUGE").replace("  num_params: 7\n", "")
    folder = model_folder(tmp_path / "m", {"weights.bin": b"w" * 1000}, bad)
    name = f"cli-{uuid.uuid4().hex[:8]}"
    done = cli.run("register", str(folder), "--name", name, "--version", "1")
    assert done.returncode == 1
    assert "model_config.type: Input should be 'ENCODER', 'DECODER' or 'SEQ2SEQ'" in done.stderr
    assert "model_metainfo.num_params: field required" in done.stderr
    assert "nothing was uploaded" in done.stderr
    assert not cli.owner_container.exists() or not list(
        cli.owner_container.list_blobs(name_starts_with=f"{name}/")
    )
    assert cli.run("status", name, "1").returncode == 3

    as_json = cli.run("register", str(folder), "--name", name, "--version", "1", "--json")
    assert as_json.returncode == 1
    error = json.loads(as_json.stdout)["error"]
    assert {"field": "model_metainfo.num_params", "rule": "field required"} in error["errors"]


def test_ls_and_show_as_another_user_never_show_a_private_model(cli: Cli, registered: Registered) -> None:
    name, version = registered.name, registered.version
    assert name in {m["name"] for m in cli.json("ls", "--mine")}
    assert name in {m["name"] for m in cli.json("ls", "--name", name)}
    assert name not in {m["name"] for m in cli.json("ls", "--all", user="bob")}
    assert cli.json("ls", "--name", name, user="bob") == []
    shown = cli.run("show", name, version, "alice", user="bob")
    assert shown.returncode == 3
    assert "not visible to you" in shown.stderr
    assert cli.run("status", name, version, user="bob").returncode == 3
    assert cli.run("open", name, version, "alice", user="bob").returncode == 3


def test_json_output_is_what_the_api_answers(cli: Cli, registered: Registered) -> None:
    name, version = registered.name, registered.version
    with cli.http() as http:
        model = http.get(f"/api/v1.0/model/{name}/{version}/alice").json()
        status = http.get(f"/api/v1.0/model/{name}/{version}/status").json()
        listing = http.get("/api/v1.0/models", params={"name": name, "limit": "10"}).json()
    assert cli.json("show", name, version) == model
    assert cli.json("show", name, version, "alice") == model
    assert cli.json("status", name, version) == status
    assert cli.json("ls", "--name", name) == listing["models"]


def test_publish_lets_others_see_and_clone_a_model_and_rm_removes_it(cli: Cli, tmp_path: Path) -> None:
    folder = model_folder(tmp_path / "m", {"extra/notes.txt": b"notes"})
    name = f"cli-{uuid.uuid4().hex[:8]}"
    assert cli.run("register", str(folder), "--name", name, "--version", "1").returncode == 0
    assert cli.run("publish", name, "1").returncode == 0
    assert cli.json("show", name, "1", "alice", user="bob")["private"] is False
    clone = cli.json("clone", name, "1", "alice", "--version", "2", "--ignore", "extra/notes.txt", user="bob")
    assert clone["status"]["state"] == "Finished"
    mine = cli.json("show", name, "2", user="bob")
    assert mine["parent_model"] == {"name": name, "version": "1", "owner": "alice"}
    assert {f["name"] for f in mine["files"]} == {"score.py", "environment.yml", "README.md"}

    assert cli.run("unpublish", name, "1").returncode == 0
    assert cli.run("show", name, "1", "alice", user="bob").returncode == 3
    assert cli.run("rm", name, "2", "--yes", user="bob").returncode == 0
    assert cli.run("rm", name, "2", "--yes", user="bob").returncode == 3


def test_exit_codes_say_ok_refused_usage_and_not_found(
    cli: Cli, registered: Registered, tmp_path: Path
) -> None:
    name, version = registered.name, registered.version
    assert cli.run("show", name, version).returncode == 0
    # 1: refused by the registry (the same version with other files is a conflict)
    other = model_folder(tmp_path / "other", {"different.bin": b"d"})
    conflict = cli.run("register", str(other), "--name", name, "--version", version)
    assert conflict.returncode == 1
    assert "HTTP 409" in conflict.stderr and "register a new version" in conflict.stderr
    # 2: usage
    assert cli.run("register", str(other), "--name", name).returncode == 2  # no version
    assert cli.run("ls", "--no-such-flag").returncode == 2
    assert cli.run("rm", name, version).returncode == 2  # asks first; no terminal to ask on
    assert cli.run("show", name).returncode == 2
    # 3: not found
    assert cli.run("show", name, "9.9").returncode == 3
    assert cli.run("status", "no-such-model", "1").returncode == 3
    assert cli.run("rm", "no-such-model", "1", "--yes").returncode == 3
    assert cli.run("publish", "no-such-model", "1").returncode == 3


def test_ctrl_c_while_following_stops_following_only_and_status_picks_it_up(cli: Cli, tmp_path: Path) -> None:
    folder = model_folder(tmp_path / "m", {"big.bin": os.urandom(40 * MIB)})
    name = f"cli-{uuid.uuid4().hex[:8]}"
    following = subprocess.Popen(
        cli.command("register", str(folder), "--name", name, "--version", "1", "--as", "alice"),
        env=cli.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # As in a terminal, whatever started this suite: a background job inherits SIGINT ignored.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    with cli.http("alice") as http:
        deadline = time.monotonic() + 60
        while http.get(f"/api/v1.0/model/{name}/1/status").status_code == 404 and time.monotonic() < deadline:
            time.sleep(0.3)
        assert http.get(f"/api/v1.0/model/{name}/1/status").json()["state"] == "InProgress"
        following.send_signal(signal.SIGINT)
        _, err = following.communicate(timeout=30)
        assert following.returncode == 130, err
        assert f"registry status {name} 1 --follow" in err
        done = cli.run("status", name, "1", "--follow", "--json")
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["state"] == "Finished"


def test_storage_that_refuses_the_upload_is_an_error_with_a_next_step(
    cli: Cli, azurite: Azurite, tmp_path: Path
) -> None:
    wrong_key = base64.b64encode(b"not the key of this account, 32b").decode()
    connection = azurite.connection_string((OWNER_ACCOUNT[0], wrong_key))
    folder = model_folder(tmp_path / "m", {})
    done = subprocess.run(
        cli.command(
            "register",
            str(folder),
            "--name",
            f"cli-{uuid.uuid4().hex[:8]}",
            "--version",
            "1",
            "--as",
            "alice",
        ),
        env=cli.env | {"REGISTRY_STORAGE_CONNECTION_STRING": connection},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    assert "your storage (" in done.stderr and "refused or failed" in done.stderr
    assert "Storage Blob Data Contributor" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_cli_waits_out_the_registrys_rate_limit(cli: Cli) -> None:
    limit, seconds = (int(n) for n in RATE_LIMITS.split("/"))
    with cli.http("carol", wait_out_429=False) as http:
        answers = [http.get("/api/v1.0/models").status_code for _ in range(limit + 1)]
    assert answers[-1] == 429  # carol is over the limit for up to `seconds` seconds now
    started = time.monotonic()
    done = cli.run("ls", "--json", user="carol")
    assert done.returncode == 0, done.stderr
    assert isinstance(json.loads(done.stdout), list)
    assert time.monotonic() - started < seconds + 5
