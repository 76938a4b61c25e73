"""infra/sealing_key.py with a stub `az`: only "not found" means there is no key yet; every other
failure stops with a non-zero exit, a message, and no parameters file; an existing key is kept at
the version the app pins; rotation goes through its explicit modes."""

from __future__ import annotations

import base64
import json
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.infra import INFRA
from tests.infra.stub_az import (
    FORBIDDEN,
    GROUP_NOT_FOUND,
    NETWORK,
    NEW_VERSION,
    NO_SUCH_SUBSCRIPTION,
    NOT_LOGGED_IN,
    OLD_VERSION,
    SECRET_NOT_FOUND,
    SUBSCRIPTION,
    THROTTLED,
    VAULT,
    Rule,
    Stubs,
    deployed_registry,
    empty_group,
)

GROUP = "rg-registry"


def run(
    stubs: Stubs, out: Path, *extra: str, subscription: str = SUBSCRIPTION
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            str(INFRA / "sealing_key.py"),
            "--subscription",
            subscription,
            "--resource-group",
            GROUP,
            "--name-prefix",
            "registry",
            "--out",
            str(out),
            *extra,
        ],
        env=stubs.env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def parameters(out: Path) -> dict[str, Any]:
    values: dict[str, Any] = {k: v["value"] for k, v in json.loads(out.read_text())["parameters"].items()}
    return values


def assert_fresh_key(key: str) -> None:
    assert len(base64.b64decode(key, validate=True)) == 32


def assert_refused(done: subprocess.CompletedProcess[str], out: Path, *words: str) -> None:
    assert done.returncode != 0
    assert not out.exists(), "a parameters file was written although Azure could not be read"
    assert not list(out.parent.glob(".sealing-*")), "a partial parameters file was left behind"
    assert done.stdout == "", "nothing may be printed to stdout, least of all a key"
    for word in words:
        assert word in done.stderr


@pytest.fixture
def out(tmp_path: Path) -> Path:
    return tmp_path / "sealing.parameters.json"


# --- failures that must never look like "no key yet" ---------------------------------------------


def test_not_logged_in_stops_without_a_key(stubs: Stubs, out: Path) -> None:
    deployed_registry(stubs)
    stubs.fail("account", "show", stderr=NOT_LOGGED_IN)
    assert_refused(run(stubs, out), out, "not logged in", "az login")


def test_a_subscription_az_cannot_use_stops_without_a_key(stubs: Stubs, out: Path) -> None:
    deployed_registry(stubs)
    stubs.fail("account", "show", stderr=NO_SUCH_SUBSCRIPTION)
    assert_refused(run(stubs, out, subscription="nope"), out, "cannot see that subscription")


def test_az_answering_for_another_subscription_stops_without_a_key(stubs: Stubs, out: Path) -> None:
    deployed_registry(stubs)
    stubs.add("az", Rule(["account", "show"], stdout={"id": "another", "name": "Other"}), first=True)
    assert_refused(run(stubs, out), out, "another subscription")


@pytest.mark.parametrize(
    ("call", "stderr", "says"),
    [
        (("group", "show"), FORBIDDEN, "not allowed (403)"),
        (("resource", "list", "Microsoft.KeyVault/vaults"), THROTTLED, "throttled the request (429)"),
        (("resource", "show", "secrets"), FORBIDDEN, "not allowed (403)"),
        (("resource", "show", "secrets"), NETWORK, "could not be reached"),
        (("resource", "list", "Microsoft.Web/sites"), NETWORK, "could not be reached"),
        (("functionapp", "config", "appsettings", "list"), FORBIDDEN, "not allowed (403)"),
    ],
)
def test_failures_reading_azure_stop_without_a_key(
    stubs: Stubs, out: Path, call: tuple[str, ...], stderr: str, says: str
) -> None:
    deployed_registry(stubs)
    stubs.fail(*call, stderr=stderr)
    assert_refused(run(stubs, out), out, says, "nothing was written")


def test_exit_code_3_without_a_not_found_message_is_not_taken_for_absent(stubs: Stubs, out: Path) -> None:
    deployed_registry(stubs)
    stubs.fail("resource", "show", "secrets", stderr="ERROR: something odd\n", exit=3)
    assert_refused(run(stubs, out), out, "something odd")


def test_a_not_found_message_with_another_exit_code_is_not_taken_for_absent(stubs: Stubs, out: Path) -> None:
    deployed_registry(stubs)
    stubs.fail("group", "show", stderr=GROUP_NOT_FOUND, exit=1)
    assert_refused(run(stubs, out), out)


def test_no_az_on_path_stops_without_a_key(out: Path, tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            str(INFRA / "sealing_key.py"),
            "--subscription",
            SUBSCRIPTION,
            "--resource-group",
            GROUP,
            "--out",
            str(out),
        ],
        env={"PATH": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert_refused(done, out, "not installed")


def test_no_subscription_given_stops_without_a_key(stubs: Stubs, out: Path) -> None:
    deployed_registry(stubs)
    done = subprocess.run(
        [sys.executable, str(INFRA / "sealing_key.py"), "--resource-group", GROUP, "--out", str(out)],
        env={k: v for k, v in stubs.env().items() if k != "AZURE_SUBSCRIPTION_ID"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert_refused(done, out, "no subscription given")
    assert stubs.calls() == []


def test_a_secret_the_app_uses_but_that_is_gone_is_recovered_not_replaced(stubs: Stubs, out: Path) -> None:
    deployed_registry(stubs)
    stubs.fail("resource", "show", "secrets", stderr=SECRET_NOT_FOUND, exit=3)
    assert_refused(run(stubs, out), out, "Recover it")


def test_a_vault_the_app_uses_but_that_is_gone_is_recovered_not_replaced(stubs: Stubs, out: Path) -> None:
    deployed_registry(stubs)
    stubs.add("az", Rule(["resource", "list", "Microsoft.KeyVault/vaults"], stdout=[]), first=True)
    assert_refused(run(stubs, out), out, "az keyvault recover")


def test_two_vaults_with_the_prefix_are_ambiguous(stubs: Stubs, out: Path) -> None:
    deployed_registry(stubs)
    twins = [{"name": VAULT, "id": "/a"}, {"name": "kv-registry-zzzzzzzzzz", "id": "/b"}]
    stubs.add("az", Rule(["resource", "list", "Microsoft.KeyVault/vaults"], stdout=twins), first=True)
    assert_refused(run(stubs, out), out, "more than one")


def test_an_app_reading_another_vault_means_a_wrong_prefix(stubs: Stubs, out: Path) -> None:
    deployed_registry(
        stubs,
        extra_settings={
            "REGISTRY_SEALING_KEY": "@Microsoft.KeyVault(SecretUri=https://kv-elsewhere.vault.azure.net/secrets/"
            f"registry-sealing-key/{OLD_VERSION})"
        },
    )
    assert_refused(run(stubs, out), out, "check --name-prefix")


# --- when a new key is right -----------------------------------------------------------------------


def test_a_missing_resource_group_gets_a_new_key(stubs: Stubs, out: Path) -> None:
    empty_group(stubs)
    done = run(stubs, out)
    assert done.returncode == 0, done.stderr
    values = parameters(out)
    assert_fresh_key(values["sealingKey"])
    assert values["sealingKeyVersion"] == "" and values["previousSealingKeyVersion"] == ""
    assert values["sealingKey"] not in done.stdout + done.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o600


def test_a_vault_without_the_secret_and_no_app_gets_a_new_key(stubs: Stubs, out: Path) -> None:
    deployed_registry(stubs, pinned=None)
    stubs.fail("resource", "show", "secrets", stderr=SECRET_NOT_FOUND, exit=3)
    stubs.add("az", Rule(["resource", "list", "Microsoft.Web/sites"], stdout=[]), first=True)
    done = run(stubs, out)
    assert done.returncode == 0, done.stderr
    assert_fresh_key(parameters(out)["sealingKey"])


def test_two_new_keys_differ(stubs: Stubs, tmp_path: Path) -> None:
    empty_group(stubs)
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    assert run(stubs, first).returncode == 0 and run(stubs, second).returncode == 0
    assert parameters(first)["sealingKey"] != parameters(second)["sealingKey"]


# --- keeping the key ---------------------------------------------------------------------------------


def test_an_existing_key_is_kept_at_the_version_the_app_pins_not_the_latest(stubs: Stubs, out: Path) -> None:
    deployed_registry(stubs, pinned=OLD_VERSION, latest=NEW_VERSION)
    done = run(stubs, out)
    assert done.returncode == 0, done.stderr
    assert parameters(out) == {
        "sealingKey": "",
        "sealingKeyVersion": OLD_VERSION,
        "previousSealingKeyVersion": "",
    }


def test_an_app_that_does_not_pin_yet_is_pinned_to_the_version_it_reads(stubs: Stubs, out: Path) -> None:
    deployed_registry(stubs, pinned="", latest=NEW_VERSION)
    done = run(stubs, out)
    assert done.returncode == 0, done.stderr
    assert parameters(out)["sealingKeyVersion"] == NEW_VERSION
    assert parameters(out)["sealingKey"] == ""


def test_a_routine_deployment_during_a_rotation_keeps_both_keys(stubs: Stubs, out: Path) -> None:
    deployed_registry(stubs, pinned=NEW_VERSION, previous=OLD_VERSION, latest=NEW_VERSION)
    done = run(stubs, out)
    assert done.returncode == 0, done.stderr
    assert parameters(out) == {
        "sealingKey": "",
        "sealingKeyVersion": NEW_VERSION,
        "previousSealingKeyVersion": OLD_VERSION,
    }


def test_the_vault_and_app_are_selected_by_name_and_every_call_names_the_subscription(
    stubs: Stubs, out: Path
) -> None:
    deployed_registry(stubs)
    assert run(stubs, out).returncode == 0
    calls = stubs.calls()
    assert calls and all(c["args"][c["args"].index("--subscription") + 1] == SUBSCRIPTION for c in calls)
    secret_read = next(c["args"] for c in calls if "secrets" in c["args"])
    assert f"vaults/{VAULT}" in secret_read  # not kv-registryx-..., listed first and tagged alike


# --- rotation ------------------------------------------------------------------------------------------


def test_a_rotation_begins_with_a_new_key_and_the_old_one_readable(stubs: Stubs, out: Path) -> None:
    deployed_registry(stubs, pinned=OLD_VERSION)
    done = run(stubs, out, "--mode", "begin-rotation")
    assert done.returncode == 0, done.stderr
    values = parameters(out)
    assert_fresh_key(values["sealingKey"])
    assert values["sealingKeyVersion"] == "" and values["previousSealingKeyVersion"] == OLD_VERSION


def test_a_second_rotation_cannot_begin_before_the_first_ends(stubs: Stubs, out: Path) -> None:
    deployed_registry(stubs, pinned=NEW_VERSION, previous=OLD_VERSION)
    assert_refused(run(stubs, out, "--mode", "begin-rotation"), out, "already in progress")


def test_a_rotation_ends_by_dropping_the_previous_key(stubs: Stubs, out: Path) -> None:
    deployed_registry(stubs, pinned=NEW_VERSION, previous=OLD_VERSION)
    done = run(stubs, out, "--mode", "finish-rotation")
    assert done.returncode == 0, done.stderr
    assert parameters(out) == {
        "sealingKey": "",
        "sealingKeyVersion": NEW_VERSION,
        "previousSealingKeyVersion": "",
    }


def test_finishing_without_a_rotation_is_refused(stubs: Stubs, out: Path) -> None:
    deployed_registry(stubs, pinned=OLD_VERSION)
    assert_refused(run(stubs, out, "--mode", "finish-rotation"), out, "no rotation in progress")


def test_nothing_to_rotate_before_the_first_deployment(stubs: Stubs, out: Path) -> None:
    empty_group(stubs)
    assert_refused(run(stubs, out, "--mode", "begin-rotation"), out, "deploy first")
