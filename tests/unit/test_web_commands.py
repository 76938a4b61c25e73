"""The commands to copy that register a new version: the curl PUT and the CLI's `registry register`."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import click
import pytest

from registry.cli.commands.register import register
from registry.cli.modelspec import FLAG_PATHS, model_document
from registry.validation import RequestContext, parse_registration
from registry.web import commands
from registry.web.core import Core
from tests.cli.test_cli_model_folder import register_flags
from tests.unit.test_web_views import install
from tests.unit.web_fixtures import acting_as, fake_core, model, seed

BASE = "https://registry.example"
SAS = "https://owner.blob.core.windows.net/src/weights.bin?sv=2024&sig=SECRET"

VIEW: dict[str, Any] = {
    "name": "reverser",
    "version": "1.0",
    "owner": "alice",
    "model_config": {
        "type": "DECODER",
        "description": "Reverses 'quoted' text",
        "private": True,
        "version": "1.0",
        "inference_properties": {
            "entry_script": "score.py",
            "docker_image": "example.azurecr.io/reverser:1",
            "docker_registry": {"url": "example.azurecr.io", "username": "puller", "password": "hunter2"},
        },
        "training_properties": {"entry_script": "train.py", "conda_env": "env.yml", "args": {"epochs": 3}},
    },
    "model_metainfo": {
        "input_types": ["NATURAL_LANGUAGE", "SOURCE_CODE"],
        "input_languages": ["en", "python"],
        "input_description": "Any text",
        "output_types": ["NATURAL_LANGUAGE"],
        "output_languages": ["en"],
        "output_description": "The text reversed",
        "num_params": 1000,
        "index_page_file": "index.md",
        "images": ["diagram.png"],
    },
    "files": [
        {"name": name, "size": 1, "state": "Finished", "url": SAS}
        for name in ("score.py", "train.py", "env.yml", "index.md", "diagram.png")
    ],
}


def shell_words(command: str) -> list[str]:
    """The words a shell would pass (a backslash before a newline continues the line)."""
    return shlex.split(command.replace("\\\n", ""))


def curl_parts(command: str) -> tuple[str, dict[str, Any]]:
    """The URL the curl command PUTs to and the body it sends."""
    words = shell_words(command)
    assert words[:3] == ["curl", "-X", "PUT"]
    assert "Authorization: Bearer $TOKEN" in words and "Content-Type: application/json" in words
    return words[3], json.loads(words[words.index("-d") + 1])


def cli_document(command: str, folder: Path) -> tuple[click.Context, dict[str, Any]]:
    """The CLI's own parser on the command (the folder placeholder filled in), and the document
    the CLI would make of its flags (as registry/cli/commands/register.py passes them on)."""
    words = shell_words(command)
    assert words[:2] == ["registry", "register"] and words[2] == commands.FOLDER
    ctx = register.make_context("register", [str(folder), *words[3:]])
    params = dict(ctx.params)
    flags = register_flags(params)
    flags["private"] = None if params["public"] is None else not params["public"]
    return ctx, model_document({}, flags, params["assignments"])


def test_the_model_pages_curl_command_puts_the_same_settings_with_placeholders_for_version_and_files() -> (
    None
):
    url, body = curl_parts(commands.from_view(BASE, VIEW).curl)

    assert url == f"{BASE}/api/v1.0/model/reverser/<new-version>"
    assert body["model_files"] == {
        f["name"]: f"<https URL of {f['name']}, with a read SAS>" for f in VIEW["files"]
    }
    config = body["model_config"]
    assert "version" not in config  # the path names the new version
    assert config["inference_properties"]["docker_registry"] == {
        "url": "example.azurecr.io",
        "username": "puller",
        "password": commands.PASSWORD,
    }
    assert config["training_properties"] == VIEW["model_config"]["training_properties"]
    assert body["model_metainfo"] == VIEW["model_metainfo"]
    # With the placeholders filled in, the API accepts the body.
    sources = {name: f"https://owner.blob.core.windows.net/src/{name}?sig=x" for name in body["model_files"]}
    context = RequestContext(
        name="reverser",
        version="2.0",
        owner_id="alice",
        owner_name="alice",
        file_names=frozenset(),
        allowed_source_hosts=("*.blob.core.windows.net",),
        allow_insecure_sources=False,
    )
    parse_registration(body | {"model_files": sources}, context)


def test_the_commands_never_hold_a_source_url_or_a_password() -> None:
    made = commands.from_view(BASE, VIEW)
    for text in (made.curl, made.cli):
        assert "sig=" not in text and "SECRET" not in text and "blob.core.windows.net" not in text
        assert "hunter2" not in text


def test_a_registry_login_gets_a_placeholder_for_its_password_in_both_commands(tmp_path: Path) -> None:
    made = commands.from_view(BASE, VIEW)
    _, body = curl_parts(made.curl)
    _, document = cli_document(made.cli, tmp_path)
    for config in (body["model_config"], document["model_config"]):
        login = config["inference_properties"]["docker_registry"]
        assert login == {"url": "example.azurecr.io", "username": "puller", "password": commands.PASSWORD}


def test_training_args_whose_keys_hold_dots_or_equals_signs_reach_the_cli_unchanged(tmp_path: Path) -> None:
    args = {"optimizer.lr": 0.1, "a=b": 1, "plain": {"nested.key": "x=y"}, "epochs": 3}
    view = json.loads(json.dumps(VIEW))
    view["model_config"]["training_properties"]["args"] = args
    _, document = cli_document(commands.from_view(BASE, view).cli, tmp_path)
    assert document["model_config"]["training_properties"]["args"] == args


def test_the_model_pages_cli_command_uses_the_clis_real_options_and_makes_the_same_document(
    tmp_path: Path,
) -> None:
    ctx, document = cli_document(commands.from_view(BASE, VIEW).cli, tmp_path)

    assert (ctx.params["name"], ctx.params["version"], ctx.params["api"]) == (
        "reverser",
        "<new-version>",
        BASE,
    )
    expected = json.loads(json.dumps({k: VIEW[k] for k in ("model_config", "model_metainfo")}))
    del expected["model_config"]["version"]
    expected["model_config"]["inference_properties"]["docker_registry"]["password"] = commands.PASSWORD
    assert document == expected


def test_a_rows_commands_carry_what_the_list_knows_and_placeholders_for_the_rest(tmp_path: Path) -> None:
    made = commands.from_row(BASE, "reverser", "ENCODER", "It's a model", private=False)

    url, body = curl_parts(made.curl)
    assert url == f"{BASE}/api/v1.0/model/reverser/<new-version>"
    assert {k: body["model_config"][k] for k in ("type", "description", "private")} == {
        "type": "ENCODER",
        "description": "It's a model",
        "private": False,
    }
    assert set(body) == {"model_config", "model_files", "model_metainfo"}
    assert all(re.fullmatch(r"<.*>", url) for url in body["model_files"].values())
    ctx, document = cli_document(made.cli, tmp_path)
    assert (ctx.params["name"], ctx.params["version"]) == ("reverser", "<new-version>")
    assert document == {"model_config": {"type": "ENCODER", "description": "It's a model", "private": False}}


def test_the_web_apps_flag_map_is_the_clis() -> None:
    """The catalog does not import the CLI (the Function app lacks its libraries): its copy of the
    flag map must follow the CLI's options."""
    options = {p.name: p.opts[0] for p in register.params if isinstance(p, click.Option)}
    clis = {path: options[flag] for flag, path in FLAG_PATHS.items() if flag != "private"}
    assert set(register_flags(dict.fromkeys(options))) <= set(FLAG_PATHS)
    assert clis == commands.CLI_FLAGS


@pytest.fixture
def owner_with_models(monkeypatch: pytest.MonkeyPatch) -> Core:
    core = install(monkeypatch, fake_core(dev_mode=True))
    seed(
        core,
        [
            model("alice", "first", private=True, description="the first"),
            model("alice", "second", private=False),
            model("bob", "theirs"),
        ],
    )
    return core


def test_my_registrations_offer_both_commands_for_each_registration(owner_with_models: Core) -> None:
    page = acting_as("alice").get("/api/catalog/registrations").get_body().decode()

    assert page.count('data-testid="register-commands"') == 2
    for name in ("first", "second"):
        assert f"/api/v1.0/model/{name}/&lt;new-version&gt;" in page
        folder = "registry register &#39;&lt;folder-with-the-files&gt;&#39;"
        assert f"{folder} \\\n  --name {name} \\\n  --version &#39;&lt;new-version&gt;&#39;" in page
        assert f'Copy the curl command<span class="visually-hidden"> for {name} 1</span>' in page
        assert f'Copy the CLI command<span class="visually-hidden"> for {name} 1</span>' in page
    assert "theirs" not in page
    assert "<script>" not in page
