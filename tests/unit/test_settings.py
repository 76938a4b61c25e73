"""The typed settings: safe defaults, and dev-only switches refused in Azure."""

from __future__ import annotations

import base64

import pytest

from registry.settings import SettingsError, load_settings
from tests.builders import make_settings, settings_env


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


# -- development switches only with the local emulator (issue 8, point 8) -------------------------

AZURE_STORAGE = (
    "DefaultEndpointsProtocol=https;AccountName=prod;AccountKey=a2V5;EndpointSuffix=core.windows.net"
)
REMOTE_ENDPOINTS = (
    "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;"
    "BlobEndpoint=http://10.0.0.5:10000/devstoreaccount1;QueueEndpoint=http://127.0.0.1:10001/devstoreaccount1;"
)
LOCAL_ENDPOINTS = (
    "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;"
    "BlobEndpoint=http://127.0.0.1:10100/devstoreaccount1;QueueEndpoint=http://localhost:10101/devstoreaccount1;"
    "TableEndpoint=http://127.0.0.1:10102/devstoreaccount1;"
)


@pytest.mark.parametrize("switch", ["REGISTRY_DEV_MODE", "REGISTRY_ALLOW_INSECURE_SOURCES"])
@pytest.mark.parametrize("storage", [AZURE_STORAGE, REMOTE_ENDPOINTS])
def test_dev_switches_are_refused_unless_storage_is_the_local_emulator(switch: str, storage: str) -> None:
    with pytest.raises(SettingsError, match="loopback"):
        make_settings(**{switch: "true", "AzureWebJobsStorage": storage})


def test_dev_switches_are_refused_with_identity_based_storage() -> None:
    env = settings_env(REGISTRY_DEV_MODE="true", AzureWebJobsStorage__accountName="acct")
    del env["AzureWebJobsStorage"]
    with pytest.raises(SettingsError, match="REGISTRY_DEV_MODE"):
        load_settings(env)


@pytest.mark.parametrize("storage", [LOCAL_ENDPOINTS, "UseDevelopmentStorage=true"])
def test_dev_switches_are_allowed_on_the_local_emulator(storage: str) -> None:
    assert make_settings(REGISTRY_DEV_MODE="true", AzureWebJobsStorage=storage).dev_mode is True


def test_without_easy_auth_in_azure_the_reason_no_caller_is_trusted_is_stated() -> None:
    settings = make_settings(WEBSITE_INSTANCE_ID="abc")
    assert settings.identity_problem is not None and "WEBSITE_AUTH_ENABLED" in settings.identity_problem
    assert make_settings(WEBSITE_INSTANCE_ID="abc", WEBSITE_AUTH_ENABLED="true").identity_problem is None


# -- source host patterns, sealing keys, quotas -------------------------------------------------


@pytest.mark.parametrize(
    "pattern", ["*", "*blob.core.windows.net", "a*.example.com", "*.*.example.com", "127.0.0.1", "x"]
)
def test_allowed_source_host_patterns_must_be_host_names_or_whole_label_suffixes(pattern: str) -> None:
    with pytest.raises(SettingsError, match="REGISTRY_ALLOWED_SOURCE_HOSTS"):
        make_settings(REGISTRY_ALLOWED_SOURCE_HOSTS=pattern)


def test_previous_sealing_keys_are_read_and_checked() -> None:
    older = [base64.b64encode(bytes([i]) * 32).decode() for i in (1, 2)]
    settings = make_settings(REGISTRY_SEALING_PREVIOUS_KEYS=" , ".join(older))
    assert settings.sealing_previous_keys == (bytes([1]) * 32, bytes([2]) * 32)
    assert make_settings().sealing_previous_keys == ()
    with pytest.raises(SettingsError, match="REGISTRY_SEALING_PREVIOUS_KEYS"):
        make_settings(REGISTRY_SEALING_PREVIOUS_KEYS="c2hvcnQ=")


def test_quotas_default_to_the_documented_values_and_are_settings() -> None:
    quotas = make_settings().quotas
    assert (quotas.max_file_bytes, quotas.max_model_bytes) == (200 * 1024**3, 1024 * 1024**3)
    assert (quotas.max_files, quotas.max_in_progress) == (1000, 20)
    assert quotas.rate_limits == ((2, 1.0), (100, 60.0), (500, 600.0))
    custom = make_settings(
        REGISTRY_MAX_FILE_GIB="0.5",
        REGISTRY_MAX_MODEL_GIB="2",
        REGISTRY_MAX_FILES="10",
        REGISTRY_MAX_IN_PROGRESS="3",
    ).quotas
    assert (custom.max_file_bytes, custom.max_model_bytes) == (1024**3 // 2, 2 * 1024**3)
    assert (custom.max_files, custom.max_in_progress) == (10, 3)


@pytest.mark.parametrize(
    ("raw", "limits"), [("off", ()), ("5/1", ((5, 1.0),)), ("10/60, 100/3600", ((10, 60.0), (100, 3600.0)))]
)
def test_rate_limits_are_parsed(raw: str, limits: tuple[tuple[int, float], ...]) -> None:
    assert make_settings(REGISTRY_RATE_LIMITS=raw).quotas.rate_limits == limits


@pytest.mark.parametrize("raw", ["fast", "0/1", "5/0", "5", "5/1,x"])
def test_malformed_rate_limits_are_refused(raw: str) -> None:
    with pytest.raises(SettingsError, match="REGISTRY_RATE_LIMITS"):
        make_settings(REGISTRY_RATE_LIMITS=raw)


def test_the_lease_is_short_by_default_so_a_dead_worker_is_replaced_soon() -> None:
    assert make_settings().copy_lease_seconds == 30


def test_the_events_source_is_the_local_host_locally_and_the_apps_https_host_in_azure() -> None:
    assert make_settings().base_url == "http://127.0.0.1:7071"
    in_azure = make_settings(WEBSITE_SITE_NAME="func-x", WEBSITE_HOSTNAME="func-x.azurewebsites.net")
    assert in_azure.base_url == "https://func-x.azurewebsites.net"
    custom = make_settings(REGISTRY_BASE_URL="https://models.contoso.com/", WEBSITE_SITE_NAME="func-x")
    assert custom.base_url == "https://models.contoso.com"


@pytest.mark.parametrize(
    ("value", "azure"),
    [("ftp://models.contoso.com", False), ("https://x.org/?q=1", False), ("models.contoso.com", False),
     ("http://models.contoso.com", True)],
)  # fmt: skip
def test_a_base_url_that_is_not_an_https_url_is_refused(value: str, azure: bool) -> None:
    env = {"REGISTRY_BASE_URL": value} | ({"WEBSITE_SITE_NAME": "func-x"} if azure else {})
    with pytest.raises(SettingsError, match="REGISTRY_BASE_URL"):
        make_settings(**env)


@pytest.mark.parametrize("value", ["http://topic.westeurope-1.eventgrid.azure.net/api/events", "topic"])
def test_an_event_grid_endpoint_must_be_https(value: str) -> None:
    with pytest.raises(SettingsError, match="REGISTRY_EVENT_GRID_ENDPOINT"):
        make_settings(REGISTRY_EVENT_GRID_ENDPOINT=value)
