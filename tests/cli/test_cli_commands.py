"""Unit tests: the commands' arguments, output and exit codes, in process, against a fake registry at the
HTTP boundary (httpx.MockTransport)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from registry.cli import session as session_module
from registry.cli.api import RegistryApi
from registry.cli.app import cli, main
from registry.cli.follow import Pace, follow
from registry.cli.identity import Identity

Handler = Callable[[httpx.Request], httpx.Response]
API = ["--api", "http://registry.test", "--as", "alice"]


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No settings from the developer's environment, config file or a running `make run`."""
    for name in [n for n in __import__("os").environ if n.startswith("REGISTRY_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("REGISTRY_CONFIG", str(tmp_path / "none.yaml"))
    monkeypatch.setenv("REGISTRY_STACK", str(tmp_path / "no-stack.json"))
    monkeypatch.setenv("REGISTRY_STATE_DIR", str(tmp_path / "state"))


class FakeRegistry:
    def __init__(self, monkeypatch: pytest.MonkeyPatch, handler: Handler) -> None:
        self.requests: list[httpx.Request] = []

        def record(request: httpx.Request) -> httpx.Response:
            self.requests.append(request)
            return handler(request)

        def api(root: str, identity: Identity) -> RegistryApi:
            return RegistryApi(root, identity, transport=httpx.MockTransport(record), sleep=lambda s: None)

        monkeypatch.setattr(session_module, "RegistryApi", api)

    def bodies(self) -> list[Any]:
        return [json.loads(r.content) if r.content else None for r in self.requests]


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_help_lists_every_command_and_the_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--help")
    assert code == 0
    for command in (
        "register",
        "status",
        "ls",
        "show",
        "publish",
        "unpublish",
        "rm",
        "clone",
        "open",
        "bulk",
    ):
        assert command in cli.commands and f"  {command} " in out
    assert "0 ok, 1 failed or refused, 2 usage, 3 not found" in out


@pytest.mark.parametrize(
    "args",
    [
        ["register"],  # no folder
        ["show", "m"],  # no version
        ["ls", "--no-such-flag"],
        ["ls", "--type", "HUGE"],
        ["register", ".", "--limit-rate", "fast"],
        ["clone", "m", "1", "bob", "--version", "2", "--as-name", "other", *API],
    ],
)
def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str], args: list[str]) -> None:
    assert run(capsys, *args)[0] == 2


def test_without_an_api_anywhere_the_cli_says_how_to_point_at_one(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "ls")
    assert code == 2
    assert "--api URL or set REGISTRY_API" in err and "make run" in err


def test_status_shows_fields_it_does_not_know_yet_such_as_phase_and_sha256(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    status = {
        "name": "m",
        "version": "1",
        "state": "InProgress",
        "message": "hashing",
        "files": [
            {
                "name": "w.bin",
                "state": "Hashing",
                "bytes_copied": 10,
                "size": 10,
                "phase": "hashing",
                "sha256": "ab12",
                "new": 1,
            }
        ],
        "something_new": {"x": 1},
    }
    FakeRegistry(monkeypatch, lambda request: httpx.Response(200, json=status))
    code, out, _ = run(capsys, "status", "m", "1", *API)
    assert code == 0
    assert "PHASE" in out and "hashing" in out and "ab12" in out
    code, out, _ = run(capsys, "status", "m", "1", "--json", *API)
    assert json.loads(out) == status


def test_status_of_a_failed_registration_exits_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    failed = {"name": "m", "version": "1", "state": "Failed", "message": "source missing", "files": []}
    FakeRegistry(monkeypatch, lambda request: httpx.Response(200, json=failed))
    assert run(capsys, "status", "m", "1", *API)[0] == 1


def test_ls_follows_continuations_up_to_the_limit_and_mine_filters_by_the_caller(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def pages(request: httpx.Request) -> httpx.Response:
        start = int(request.url.params.get("continuation") or 0)
        limit = int(request.url.params["limit"])
        models = [
            {"name": f"m{i}", "version": "1", "owner": "alice"} for i in range(start, min(start + limit, 5))
        ]
        more = str(start + limit) if start + limit < 5 else None
        return httpx.Response(200, json={"models": models, "continuation": more})

    fake = FakeRegistry(monkeypatch, pages)
    code, out, _ = run(capsys, "ls", "--mine", "--limit", "3", "--json", *API)
    assert code == 0
    assert [m["name"] for m in json.loads(out)] == ["m0", "m1", "m2"]
    assert fake.requests[0].url.params["owner"] == "alice"
    code, out, _ = run(capsys, "ls", "--all", "--json", *API)
    assert [m["name"] for m in json.loads(out)] == [f"m{i}" for i in range(5)]


def test_publish_and_unpublish_patch_the_private_flag(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = FakeRegistry(monkeypatch, lambda request: httpx.Response(200, json={"message": "Updated"}))
    assert run(capsys, "publish", "m", "1", *API)[0] == 0
    assert run(capsys, "unpublish", "m", "1", *API)[0] == 0
    assert [r.method for r in fake.requests] == ["PATCH", "PATCH"]
    assert fake.bodies() == [{"model_config": {"private": False}}, {"model_config": {"private": True}}]


def test_clone_sends_the_parent_and_the_files_to_leave_out(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = FakeRegistry(monkeypatch, lambda request: httpx.Response(202, json={"message": "Clone accepted"}))
    code, out, _ = run(
        capsys,
        "clone",
        "m",
        "1",
        "bob",
        "--version",
        "2",
        "--ignore",
        "a.bin",
        "--ignore",
        "b.bin",
        "--public",
        "--no-follow",
        "--json",
        *API,
    )
    assert code == 0
    assert fake.requests[0].method == "PUT" and fake.requests[0].url.path == "/api/v1.0/model/clone/m/2"
    assert fake.bodies()[0] == {
        "parent_version": "1",
        "parent_owner": "bob",
        "ignore_files": ["a.bin", "b.bin"],
        "model_config": {"private": False},
    }
    assert json.loads(out)["registration"] == {"message": "Clone accepted"}


def test_open_prints_the_catalog_page_or_says_there_is_none(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    catalog = {"served": True}

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.startswith("/api/catalog/"):
            return httpx.Response(200 if catalog["served"] else 404, text="<html>")
        return httpx.Response(200, json={"name": "m"})

    FakeRegistry(monkeypatch, answer)
    code, out, _ = run(capsys, "open", "m", "1", *API)
    assert (code, out.strip()) == (0, "http://registry.test/api/catalog/model/m/1/alice")
    catalog["served"] = False
    code, _, err = run(capsys, "open", "m", "1", "bob", *API)
    assert code == 1 and "no web catalog" in err


def test_the_api_error_in_json_mode_is_one_json_document_on_stdout(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    FakeRegistry(
        monkeypatch,
        lambda request: httpx.Response(404, json={"message": "Not found", "error_message": "gone"}),
    )
    code, out, err = run(capsys, "show", "m", "1", "--json", *API)
    assert code == 3
    assert json.loads(out)["error"]["status"] == 404
    assert "error:" in err


def _status(copied: int, state: str = "InProgress") -> dict[str, Any]:
    return {"state": state, "files": [{"name": "w", "bytes_copied": copied, "size": 10}]}


def test_follow_long_polls_the_status_and_never_sleeps_while_the_registry_waits() -> None:
    answers = iter([_status(0), _status(5), _status(5, "Finished")])
    waits: list[int] = []

    class Api:
        def status(self, name: str, version: str, *, wait: int = 0) -> dict[str, Any]:
            waits.append(wait)
            now[0] += 3.0  # the registry held the request until the status changed
            return next(answers)

    now, sleeps = [0.0], list[float]()
    pace = Pace(1.0, 3.0, sleeps.append, wait=20, clock=lambda: now[0])
    final = follow(Api(), "m", "1", lambda _: None, pace=pace)  # type: ignore[arg-type]
    assert final["state"] == "Finished"
    assert waits == [0, 20, 20] and sleeps == []


def test_follow_paces_itself_against_a_registry_that_answers_at_once() -> None:
    answers = iter([_status(0), _status(0), _status(0), _status(5), _status(10, "Finished")])

    class Api:
        def status(self, name: str, version: str, *, wait: int = 0) -> dict[str, Any]:
            return next(answers)

    seen: list[dict[str, Any]] = []
    sleeps: list[float] = []
    final = follow(Api(), "m", "1", seen.append, pace=Pace(1.0, 3.0, sleeps.append, clock=lambda: 0.0))  # type: ignore[arg-type]
    assert final["state"] == "Finished" and len(seen) == 5
    assert sleeps == [1.0, 1.5]  # unchanged answers: slower each time; a change resets the pace


def test_registry_bulk_runs_the_bulk_command_with_its_own_arguments(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run(capsys, "bulk", "--help")
    assert code == 0
    assert "manifest" in out and "--wait" in out


def test_python_m_registry_bulk_still_works() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "registry", "bulk", "--help"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "--wait" in done.stdout
    done = subprocess.run(
        [sys.executable, "-m", "registry", "--help"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0 and "register" in done.stdout


def test_registers_upload_defaults_are_the_ones_the_benchmark_measures() -> None:
    from registry.cli.upload import MIB, UploadSettings

    options = {p.name: p.default for p in cli.commands["register"].params}
    defaults = UploadSettings()
    block_mib = options["block_size"]
    assert isinstance(block_mib, int)
    assert block_mib * MIB == defaults.block_size
    assert (options["concurrency"], options["parallel_files"]) == (
        defaults.concurrency,
        defaults.parallel_files,
    )


def test_show_lists_each_files_sha256_from_the_registry_and_no_md5(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    digest = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
    md5 = "1B2M2Y8AsgTpgAmY7PhCfg=="  # base64 of d41d8cd98f00b204e9800998ecf8427e
    model = {
        "name": "m",
        "version": "1",
        "owner": "alice",
        "state": "InProgress",
        "private": True,
        "model_config": {},
        "model_metainfo": {},
        "files": [
            {"name": "score.py", "size": 4, "sha256": digest, "content_md5": md5, "state": "Finished"},
            {"name": "w.bin", "size": 10, "content_md5": md5, "state": "Hashing"},  # no digest yet
        ],
    }
    FakeRegistry(monkeypatch, lambda request: httpx.Response(200, json=model))
    monkeypatch.setenv("COLUMNS", "200")  # a table as wide as a terminal's, nothing cut short
    code, out, _ = run(capsys, "show", "m", "1", *API)
    assert code == 0
    header = next(line for line in out.splitlines() if line.startswith("FILE"))
    assert "SHA-256" in header.split() and "MD5" not in header
    score = next(line for line in out.splitlines() if line.startswith("score.py"))
    assert digest in score.split()
    weights = next(line for line in out.splitlines() if line.startswith("w.bin"))
    assert weights.split() == ["w.bin", "10", "B", "Hashing"]
    assert "d41d8cd98f00b204e9800998ecf8427e" not in out and md5 not in out
    code, out, _ = run(capsys, "show", "m", "1", "--json", *API)
    assert json.loads(out) == model  # --json: the API's document, content_md5 included
