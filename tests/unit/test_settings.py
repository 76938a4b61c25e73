"""The typed settings: safe defaults, and dev-only switches refused in Azure."""

from __future__ import annotations

import base64

import pytest

from registry.settings import SettingsError, load_settings
from tests.fakes import make_settings, settings_env


def test_defaults() -> None:
    settings = make_settings()
    assert settings.dev_mode is False
    assert settings.running_in_azure is False
    assert settings.allow_insecure_sources is False
    assert settings.allowed_source_hosts == ("*.blob.core.windows.net",)
    assert settings.copy_block_size == 8 * 1024 * 1024
    assert settings.sealing_key == bytes(range(32))


@pytest.mark.parametrize("azure_marker", ["WEBSITE_INSTANCE_ID", "WEBSITE_SITE_NAME"])
def test_running_in_azure_is_detected(azure_marker: str) -> None:
    assert make_settings(**{azure_marker: "abc123"}).running_in_azure is True


@pytest.mark.parametrize("azure_marker", ["WEBSITE_INSTANCE_ID", "WEBSITE_SITE_NAME"])
def test_dev_mode_is_refused_in_azure(azure_marker: str) -> None:
    with pytest.raises(SettingsError, match="REGISTRY_DEV_MODE"):
        make_settings(REGISTRY_DEV_MODE="true", **{azure_marker: "abc123"})


def test_insecure_sources_are_refused_in_azure() -> None:
    with pytest.raises(SettingsError, match="REGISTRY_ALLOW_INSECURE_SOURCES"):
        make_settings(REGISTRY_ALLOW_INSECURE_SOURCES="true", WEBSITE_INSTANCE_ID="abc123")


def test_dev_switches_are_allowed_locally() -> None:
    settings = make_settings(REGISTRY_DEV_MODE="1", REGISTRY_ALLOW_INSECURE_SOURCES="yes")
    assert settings.dev_mode is True
    assert settings.allow_insecure_sources is True


def test_dev_switches_set_to_false_are_fine_in_azure() -> None:
    settings = make_settings(
        REGISTRY_DEV_MODE="false", REGISTRY_ALLOW_INSECURE_SOURCES="0", WEBSITE_INSTANCE_ID="abc"
    )
    assert settings.dev_mode is False
    assert settings.running_in_azure is True


def test_malformed_flag_is_refused() -> None:
    with pytest.raises(SettingsError, match="REGISTRY_DEV_MODE"):
        make_settings(REGISTRY_DEV_MODE="maybe")


@pytest.mark.parametrize(
    "key",
    [
        "",
        "not base64!",
        base64.b64encode(bytes(16)).decode(),
        base64.b64encode(bytes(31)).decode(),
        base64.b64encode(bytes(33)).decode(),
        base64.b64encode(bytes(64)).decode(),
    ],
)
def test_sealing_key_must_be_32_bytes_base64(key: str) -> None:
    with pytest.raises(SettingsError, match="REGISTRY_SEALING_KEY") as raised:
        make_settings(REGISTRY_SEALING_KEY=key)
    if key:
        assert key not in str(raised.value)


def test_missing_sealing_key_is_refused() -> None:
    env = settings_env()
    del env["REGISTRY_SEALING_KEY"]
    with pytest.raises(SettingsError, match="REGISTRY_SEALING_KEY"):
        load_settings(env)


def test_storage_connection_is_required() -> None:
    env = settings_env()
    del env["AzureWebJobsStorage"]
    with pytest.raises(SettingsError, match="AzureWebJobsStorage"):
        load_settings(env)


def test_identity_based_storage_connection_is_accepted() -> None:
    env = settings_env(AzureWebJobsStorage__accountName="acct", AzureWebJobsStorage__clientId="cid")
    del env["AzureWebJobsStorage"]
    settings = load_settings(env)
    assert settings.storage_account_name == "acct"
    assert settings.storage_connection_string is None
    assert settings.storage_client_id == "cid"


@pytest.mark.parametrize(
    ("env", "trusted"),
    [
        ({}, False),
        ({"REGISTRY_DEV_MODE": "true"}, True),
        ({"WEBSITE_AUTH_ENABLED": "true"}, False),  # not in Azure: anyone could send the headers
        ({"WEBSITE_INSTANCE_ID": "abc"}, False),  # in Azure without Easy Auth
        ({"WEBSITE_INSTANCE_ID": "abc", "WEBSITE_AUTH_ENABLED": "True"}, True),
        ({"WEBSITE_INSTANCE_ID": "abc", "WEBSITE_AUTH_ENABLED": "false"}, False),
    ],
)
def test_principal_headers_are_trusted_only_in_dev_mode_or_behind_easy_auth(
    env: dict[str, str], trusted: bool
) -> None:
    assert make_settings(**env).trusts_principal_headers is trusted


def test_allowed_source_hosts_are_parsed_and_lower_cased() -> None:
    settings = make_settings(REGISTRY_ALLOWED_SOURCE_HOSTS=" A.example.com ,*.Blob.Core.Windows.Net,, ")
    assert settings.allowed_source_hosts == ("a.example.com", "*.blob.core.windows.net")


def test_copy_settings_are_read_and_checked() -> None:
    settings = make_settings(
        REGISTRY_COPY_BLOCK_MIB="4",
        REGISTRY_COPY_CONCURRENCY="3",
        REGISTRY_COPY_TIME_BUDGET_SECONDS="30",
        REGISTRY_COPY_LEASE_SECONDS="60",
        REGISTRY_STALE_AFTER_SECONDS="120",
    )
    assert settings.copy_block_size == 4 * 1024 * 1024
    assert settings.copy_concurrency == 3
    assert settings.copy_time_budget_seconds == 30
    assert settings.copy_lease_seconds == 60
    assert settings.stale_after_seconds == 120
    with pytest.raises(SettingsError, match="REGISTRY_COPY_CONCURRENCY"):
        make_settings(REGISTRY_COPY_CONCURRENCY="0")
    with pytest.raises(SettingsError, match="REGISTRY_COPY_BLOCK_MIB"):
        make_settings(REGISTRY_COPY_BLOCK_MIB="lots")
