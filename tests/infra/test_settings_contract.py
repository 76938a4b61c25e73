"""The settings contract between infra/main.bicep and the code.

`load_settings` runs on the app settings the Bicep gives the function app, plus what App Service
injects, through a mapping that records every key the code looks up. Then:
- the settings load, with production values (no dev mode, Service Bus queue, Easy Auth trusted);
- every key the code looks up is set by the Bicep, injected by the platform, or in SAFE_DEFAULTS;
- every key the Bicep sets is read by the code or by the Functions platform (READ_BY_PLATFORM).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from registry.settings import Settings, load_settings
from tests.infra import Unresolved, app_settings, parse

# Set by the platform on a Flex Consumption instance: the Bicep must not set them. What Flex sets
# (checked against the Functions host, which detects its environment from them:
# github.com/Azure/azure-functions-host, src/WebJobs.Script/Environment/EnvironmentExtensions.cs):
# - WEBSITE_SITE_NAME on every plan, Flex included (the Flex host id is derived from it);
# - WEBSITE_SKU=FlexConsumption, and CONTAINER_NAME (or WEBSITE_POD_NAME) with LEGION_SERVICE_HOST:
#   how the host recognises Flex;
# - not WEBSITE_INSTANCE_ID: the host takes that for "App Service", which Flex is not (it is on
#   Windows/Linux App Service plans and classic Consumption);
# - WEBSITE_AUTH_ENABLED=True when authsettingsV2 is enabled: Flex's host applies it from the site
#   config at start-up and runs Easy Auth in process when it reads true. An app setting of the same
#   name takes precedence over the site config, which is why the Bicep must never set it.
PLATFORM_INJECTED = {
    "WEBSITE_SITE_NAME": "the app's name, on every plan (Flex included)",
    "WEBSITE_SKU": "'FlexConsumption' on Flex",
    "CONTAINER_NAME": "the instance's container on Flex (or WEBSITE_POD_NAME)",
    "WEBSITE_POD_NAME": "the instance on Flex, where CONTAINER_NAME is not set",
    "LEGION_SERVICE_HOST": "set on Flex Consumption (with CONTAINER_NAME or WEBSITE_POD_NAME)",
    "WEBSITE_INSTANCE_ID": "the instance id on App Service plans and classic Consumption; not on Flex",
    "WEBSITE_AUTH_ENABLED": "'True' when App Service Authentication (authsettingsV2) is on",
    "WEBSITE_AUTH_V2_CONFIG_JSON": "the authsettingsV2 configuration, where App Service injects it",
    "WEBSITE_HOSTNAME": "the app's default host name (the events' source unless REGISTRY_BASE_URL is set)",
}
# What a Flex Consumption instance of this deployment sees (Easy Auth on).
INJECTED_VALUES = {
    "WEBSITE_SITE_NAME": "func-registry-test",
    "WEBSITE_SKU": "FlexConsumption",
    "CONTAINER_NAME": "func-registry-test_0123abcd",
    "LEGION_SERVICE_HOST": "10.0.0.1",
    "WEBSITE_AUTH_ENABLED": "True",
    "WEBSITE_HOSTNAME": "func-registry-test-abc123.westeurope-01.azurewebsites.net",
}

# Read by the code, deliberately absent in Azure, where the default is the safe production choice.
SAFE_DEFAULTS = {
    "REGISTRY_SIGNING_KEY": "a local signing key (a private key in an app setting), for development only; "
    "refused in Azure, where the app signs with the Key Vault key of REGISTRY_SIGNING_KEY_ID",
    "AzureWebJobsStorage": "a storage connection string, for the local emulator; absent, the code and "
    "the host use the identity-based AzureWebJobsStorage__* settings (shared keys are off)",
    "ServiceBusConnection": "a Service Bus connection string, for the emulator; absent, the identity-based "
    "ServiceBusConnection__* settings are used (local auth is off on the namespace)",
}

# Set by the Bicep for the Functions host or platform (it may be read by the code too).
READ_BY_PLATFORM = {
    "AzureWebJobsStorage__accountName": "the host's storage (queue and timer triggers, leases)",
    "AzureWebJobsStorage__clientId": "which identity the host uses for its storage",
    "AzureWebJobsStorage__credential": "'managedidentity': the host authenticates to storage with it",
    "APPLICATIONINSIGHTS_CONNECTION_STRING": "the host's and worker's telemetry destination",
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING": "Entra ID telemetry ingestion (local auth is off)",
    "ServiceBusConnection__fullyQualifiedNamespace": "the Service Bus trigger's connection",
    "ServiceBusConnection__clientId": "which identity the Service Bus trigger uses",
    "ServiceBusConnection__credential": "'managedidentity' for the Service Bus trigger",
    "REGISTRY_JOB_QUEUE": "function_app.py reads it at indexing to register the matching trigger",
    "REGISTRY_SERVICEBUS_QUEUE": "the Service Bus trigger's queue name (%REGISTRY_SERVICEBUS_QUEUE%)",
}

KEY_VAULT_REFERENCE = re.compile(r"@Microsoft\.KeyVault\(SecretUri=<keyVault\.outputs\.[A-Za-z]+>\)")
SEALING_KEY = base64.b64encode(bytes(range(32))).decode()  # what the platform resolves a reference to
PREVIOUS_KEY = base64.b64encode(bytes(range(32, 64))).decode()
# What keyVault.outputs.signingKeyUri is once deployed: the signing key's URI with its version.
SIGNING_KEY_URI = (
    "https://kv-registry-test.vault.azure.net/keys/manifest-signing/0123456789abcdef0123456789abcdef"
)


EVENT_GRID_ENDPOINT = "https://evgt-registry-test.westeurope-1.eventgrid.azure.net/api/events"


class RecordingEnv(dict[str, str]):
    """App settings that remember every key looked up; enumerating them is refused, since the
    contract could not tell which keys that read."""

    def __init__(self, values: Mapping[str, str]) -> None:
        super().__init__(values)
        self.looked_up: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:
        self.looked_up.add(key)
        return super().get(key, default)

    def __getitem__(self, key: str) -> str:
        self.looked_up.add(key)
        return super().__getitem__(key)

    def __contains__(self, key: object) -> bool:
        self.looked_up.add(str(key))
        return super().__contains__(key)

    def __iter__(self) -> Iterator[str]:
        raise AssertionError("load_settings enumerated the settings: the contract cannot see what it reads")

    def keys(self) -> Any:
        raise AssertionError("load_settings enumerated the settings: the contract cannot see what it reads")

    def items(self) -> Any:
        raise AssertionError("load_settings enumerated the settings: the contract cannot see what it reads")

    def values(self) -> Any:
        raise AssertionError("load_settings enumerated the settings: the contract cannot see what it reads")


def azure_environment(*, rotating: bool = False) -> dict[str, str]:
    """What the app sees on Flex: the Bicep's settings, with deployment-time values filled in;
    `rotating`: during a sealing-key rotation (a previous key is set)."""
    env: dict[str, str] = {}
    for name, value in app_settings().items():
        assert isinstance(value, str), f"{name}: app settings are strings, not {value!r}"
        if name == "REGISTRY_SEALING_KEY":
            assert KEY_VAULT_REFERENCE.fullmatch(value), f"the sealing key is a Key Vault reference: {value}"
            value = SEALING_KEY
        elif name == "REGISTRY_SIGNING_KEY_ID":
            assert value == "<keyVault.outputs.signingKeyUri>", f"the signing key is the vault's key: {value}"
            value = SIGNING_KEY_URI
        elif name == "REGISTRY_SEALING_PREVIOUS_KEYS":
            # Empty, or the Key Vault reference of the previous version during a rotation.
            value = PREVIOUS_KEY if rotating else ""
        elif name == "REGISTRY_EVENT_GRID_ENDPOINT":
            assert value == "<eventGrid.outputs.endpoint>", f"events go to the deployed topic: {value}"
            value = EVENT_GRID_ENDPOINT
        elif isinstance(value, Unresolved):
            value = f"deployed-{name.lower()}"  # a resource name, id or endpoint
        env[name] = value
    return env | INJECTED_VALUES


@pytest.fixture(scope="module")
def loaded() -> tuple[Settings, set[str]]:
    env = RecordingEnv(azure_environment())
    settings = load_settings(env)
    return settings, env.looked_up


def test_production_settings_load_with_production_values(loaded: tuple[Settings, set[str]]) -> None:
    settings, _ = loaded
    assert settings.running_in_azure
    assert not settings.dev_mode
    assert not settings.allow_insecure_sources
    assert settings.easy_auth_enabled and settings.trusts_principal_headers
    assert settings.storage_connection_string is None and settings.storage_account_name
    assert settings.storage_client_id
    assert settings.job_queue_kind == "servicebus"
    assert settings.service_bus_connection_string is None and settings.service_bus_namespace
    assert settings.service_bus_client_id
    assert settings.service_bus_queue == "registration-jobs"
    assert settings.bulk_owners == frozenset()
    assert len(settings.sealing_key) == 32
    assert settings.allowed_source_hosts == ("*.blob.core.windows.net",)
    assert settings.copy_block_size == 8 * 1024 * 1024
    assert settings.copy_concurrency == 8
    assert settings.copy_time_budget_seconds == 200
    assert settings.copy_lease_seconds == 30
    assert settings.stale_after_seconds == 900
    assert settings.signing_key_uri == SIGNING_KEY_URI and settings.signing_key_pem is None
    assert settings.signing_previous_public_keys == ()
    assert settings.base_url == "https://func-registry-test-abc123.westeurope-01.azurewebsites.net"
    assert settings.event_grid_endpoint == EVENT_GRID_ENDPOINT
    assert (settings.webhooks_table, settings.webhook_deliveries_table) == ("webhooks", "webhookdeliveries")
    assert settings.max_webhooks == 25 and settings.webhook_retry_base_seconds == 30


def test_every_setting_the_code_reads_is_provisioned(loaded: tuple[Settings, set[str]]) -> None:
    _, looked_up = loaded
    provided = set(app_settings()) | set(PLATFORM_INJECTED) | set(SAFE_DEFAULTS)
    assert looked_up - provided == set(), "read by the code, but neither set by the Bicep nor a safe default"


def test_the_bicep_sets_nothing_that_nobody_reads(loaded: tuple[Settings, set[str]]) -> None:
    _, looked_up = loaded
    unread = set(app_settings()) - looked_up - set(READ_BY_PLATFORM)
    assert unread == set(), "set by the Bicep, but read neither by the code nor by the platform"


def test_the_settings_load_during_a_sealing_key_rotation() -> None:
    """REGISTRY_SEALING_PREVIOUS_KEYS is empty, or during a rotation the previous key version."""
    settings = load_settings(RecordingEnv(azure_environment(rotating=True)))
    assert settings.sealing_key == base64.b64decode(SEALING_KEY)
    assert settings.sealing_previous_keys == (base64.b64decode(PREVIOUS_KEY),)


def test_on_flex_without_easy_auth_no_caller_is_trusted() -> None:
    """The platform sets WEBSITE_AUTH_ENABLED only when authsettingsV2 is on: without it the app,
    recognising Azure by WEBSITE_SITE_NAME (Flex sets no WEBSITE_INSTANCE_ID), trusts no header."""
    env = {k: v for k, v in azure_environment().items() if k != "WEBSITE_AUTH_ENABLED"}
    settings = load_settings(RecordingEnv(env))
    assert settings.running_in_azure and not settings.trusts_principal_headers
    assert settings.identity_problem and "WEBSITE_AUTH_ENABLED" in settings.identity_problem


def test_the_bicep_never_sets_what_decides_whether_principal_headers_are_trusted() -> None:
    """An app setting WEBSITE_AUTH_ENABLED would override the site's Easy Auth configuration on Flex
    (the host prefers the app setting), and REGISTRY_DEV_MODE=true would trust forged headers."""
    settings = app_settings()
    assert not {name for name in settings if name.startswith("WEBSITE_AUTH")}
    assert settings["REGISTRY_DEV_MODE"] == "false"


def test_the_named_exceptions_are_current(loaded: tuple[Settings, set[str]]) -> None:
    _, looked_up = loaded
    bicep = set(app_settings())
    assert bicep & set(PLATFORM_INJECTED) == set(), "the platform sets these itself"
    assert bicep & set(SAFE_DEFAULTS) == set(), "these must stay unset in Azure"
    assert set(SAFE_DEFAULTS) <= looked_up, "a safe default the code no longer reads: drop it"
    assert set(READ_BY_PLATFORM) <= bicep, "a platform setting the Bicep no longer sets: drop it"
    assert all(PLATFORM_INJECTED.values()) and all(SAFE_DEFAULTS.values()) and all(READ_BY_PLATFORM.values())


def test_the_function_app_gets_exactly_these_settings() -> None:
    """main.bicep's `appSettings` variable is what the function app module deploys, unchanged."""
    assert parse("main.bicep")["modules"]["functionApp"]["config"]["params"]["appSettings"] == "appSettings"
    module = parse("modules/functionapp.bicep")
    configs = module["resources"]
    assert configs["settings"]["config"] == {
        "parent": "site",
        "name": "appsettings",
        "properties": "appSettings",
    }
    assert "appSettings" not in configs["site"]["config"]["properties"]["siteConfig"]
    assert module["parameters"]["appSettings"]["type"] == "object"
