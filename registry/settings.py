"""One typed settings object, read from app settings (environment variables).

`local.settings.sample.json` lists every setting read here, with local values.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache

STORAGE_CONNECTION = "AzureWebJobsStorage"
# Trigger bindings name the storage queue literally, so it is a constant rather than a setting.
JOBS_QUEUE = "registration-jobs"
SERVICE_BUS_CONNECTION = "ServiceBusConnection"
SERVICE_BUS_QUEUE_SETTING = "REGISTRY_SERVICEBUS_QUEUE"
JOB_QUEUE_KINDS = ("storage", "servicebus")


def job_queue_kind(env: Mapping[str, str]) -> str:
    """Which job queue (and so which queue trigger) the app uses: read at indexing time too."""
    kind = (env.get("REGISTRY_JOB_QUEUE") or "storage").lower()
    if kind not in JOB_QUEUE_KINDS:
        raise SettingsError(f"REGISTRY_JOB_QUEUE must be one of {', '.join(JOB_QUEUE_KINDS)}, not {kind!r}")
    return kind


class SettingsError(RuntimeError):
    """The app settings are missing, malformed or unsafe for where the app runs."""


@dataclass(frozen=True)
class Settings:
    # Storage: a connection string locally, identity-based (`AzureWebJobsStorage__*`) in Azure.
    storage_connection_string: str | None
    storage_account_name: str | None
    storage_client_id: str | None
    models_container: str
    registrations_table: str
    files_table: str
    catalog_table: str
    changes_table: str
    job_queue_kind: str
    service_bus_connection_string: str | None
    service_bus_namespace: str | None
    service_bus_client_id: str | None
    service_bus_queue: str
    service_bus_max_deliveries: int
    bulk_owners: frozenset[str]
    jobs_queue: str
    sealing_key: bytes
    dev_mode: bool
    running_in_azure: bool
    easy_auth_enabled: bool
    allowed_source_hosts: tuple[str, ...]
    allow_insecure_sources: bool
    copy_block_size: int
    copy_concurrency: int
    copy_time_budget_seconds: float
    copy_lease_seconds: float
    stale_after_seconds: float
    max_body_bytes: int = 1024 * 1024

    @property
    def trusts_principal_headers(self) -> bool:
        """Easy Auth strips client-sent principal headers; only then (or in dev mode) are they trusted."""
        return self.dev_mode or (self.running_in_azure and self.easy_auth_enabled)


def _flag(env: Mapping[str, str], key: str, default: bool = False) -> bool:
    raw = env.get(key)
    if raw is None or raw == "":
        return default
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{key} must be true or false, not {raw!r}")


def _number(env: Mapping[str, str], key: str, default: float, minimum: float) -> float:
    raw = env.get(key)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{key} must be a number, not {raw!r}") from None
    if value < minimum:
        raise SettingsError(f"{key} must be at least {minimum}")
    return value


def _sealing_key(env: Mapping[str, str]) -> bytes:
    raw = env.get("REGISTRY_SEALING_KEY", "")
    try:
        key = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != 32:
        raise SettingsError("REGISTRY_SEALING_KEY must be 32 bytes, base64-encoded")
    return key


def load_settings(env: Mapping[str, str]) -> Settings:
    running_in_azure = bool(env.get("WEBSITE_INSTANCE_ID") or env.get("WEBSITE_SITE_NAME"))
    dev_mode = _flag(env, "REGISTRY_DEV_MODE")
    allow_insecure = _flag(env, "REGISTRY_ALLOW_INSECURE_SOURCES")
    if running_in_azure and (dev_mode or allow_insecure):
        raise SettingsError(
            "REGISTRY_DEV_MODE and REGISTRY_ALLOW_INSECURE_SOURCES are for local development "
            "and are refused when the app runs in Azure"
        )
    connection_string = env.get(STORAGE_CONNECTION) or None
    account_name = env.get(f"{STORAGE_CONNECTION}__accountName") or None
    if connection_string is None and account_name is None:
        raise SettingsError(
            f"set {STORAGE_CONNECTION} (a connection string) or {STORAGE_CONNECTION}__accountName"
        )
    budget = _number(env, "REGISTRY_COPY_TIME_BUDGET_SECONDS", 200, 0.1)
    lease = _number(env, "REGISTRY_COPY_LEASE_SECONDS", 270, 1)
    if lease <= budget:
        raise SettingsError("REGISTRY_COPY_LEASE_SECONDS must exceed REGISTRY_COPY_TIME_BUDGET_SECONDS")
    kind = job_queue_kind(env)
    sb_connection = env.get(SERVICE_BUS_CONNECTION) or None
    sb_namespace = env.get(f"{SERVICE_BUS_CONNECTION}__fullyQualifiedNamespace") or None
    if kind == "servicebus" and sb_connection is None and sb_namespace is None:
        raise SettingsError(
            f"REGISTRY_JOB_QUEUE=servicebus needs {SERVICE_BUS_CONNECTION} (a connection string) "
            f"or {SERVICE_BUS_CONNECTION}__fullyQualifiedNamespace"
        )
    hosts = env.get("REGISTRY_ALLOWED_SOURCE_HOSTS", "*.blob.core.windows.net")
    return Settings(
        storage_connection_string=connection_string,
        storage_account_name=account_name,
        storage_client_id=env.get(f"{STORAGE_CONNECTION}__clientId") or None,
        models_container=env.get("REGISTRY_MODELS_CONTAINER", "models"),
        registrations_table=env.get("REGISTRY_REGISTRATIONS_TABLE", "registrations"),
        files_table=env.get("REGISTRY_FILES_TABLE", "registrationfiles"),
        catalog_table=env.get("REGISTRY_CATALOG_TABLE", "catalog"),
        changes_table=env.get("REGISTRY_CHANGES_TABLE", "registrationchanges"),
        job_queue_kind=kind,
        service_bus_connection_string=sb_connection,
        service_bus_namespace=sb_namespace,
        service_bus_client_id=env.get(f"{SERVICE_BUS_CONNECTION}__clientId") or None,
        service_bus_queue=env.get(SERVICE_BUS_QUEUE_SETTING) or JOBS_QUEUE,
        service_bus_max_deliveries=int(_number(env, "REGISTRY_SERVICEBUS_MAX_DELIVERIES", 5, 1)),
        bulk_owners=frozenset(o.strip() for o in env.get("REGISTRY_BULK_OWNERS", "").split(",") if o.strip()),
        jobs_queue=JOBS_QUEUE,
        sealing_key=_sealing_key(env),
        dev_mode=dev_mode,
        running_in_azure=running_in_azure,
        easy_auth_enabled=_flag(env, "WEBSITE_AUTH_ENABLED"),
        allowed_source_hosts=tuple(h.strip().lower() for h in hosts.split(",") if h.strip()),
        allow_insecure_sources=allow_insecure,
        copy_block_size=int(_number(env, "REGISTRY_COPY_BLOCK_MIB", 8, 1) * 1024 * 1024),
        copy_concurrency=int(_number(env, "REGISTRY_COPY_CONCURRENCY", 8, 1)),
        copy_time_budget_seconds=budget,
        copy_lease_seconds=lease,
        stale_after_seconds=_number(env, "REGISTRY_STALE_AFTER_SECONDS", 900, 1),
    )


@cache
def current_settings() -> Settings:
    """The settings of this process, read once (app settings change only with a restart)."""
    return load_settings(os.environ)
