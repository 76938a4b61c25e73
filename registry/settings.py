"""One typed settings object, read from app settings (environment variables).

`local.settings.sample.json` lists every setting read here, with local values.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from urllib.parse import urlsplit

from registry.sources import check_host_pattern

STORAGE_CONNECTION = "AzureWebJobsStorage"
# Trigger bindings name the storage queue literally, so it is a constant rather than a setting.
JOBS_QUEUE = "registration-jobs"
SERVICE_BUS_CONNECTION = "ServiceBusConnection"
SERVICE_BUS_QUEUE_SETTING = "REGISTRY_SERVICEBUS_QUEUE"
JOB_QUEUE_KINDS = ("storage", "servicebus")
GIB = 1024**3
# DeepDev's published limits: at most 2 requests a second, 100 a minute and 500 in 10 minutes.
DEFAULT_RATE_LIMITS = "2/1,100/60,500/600"
_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})


def job_queue_kind(env: Mapping[str, str]) -> str:
    """Which job queue (and so which queue trigger) the app uses: read at indexing time too."""
    kind = (env.get("REGISTRY_JOB_QUEUE") or "storage").lower()
    if kind not in JOB_QUEUE_KINDS:
        raise SettingsError(f"REGISTRY_JOB_QUEUE must be one of {', '.join(JOB_QUEUE_KINDS)}, not {kind!r}")
    return kind


class SettingsError(RuntimeError):
    """The app settings are missing, malformed or unsafe for where the app runs."""


@dataclass(frozen=True)
class Quotas:
    """Limits on what one owner may register (each a setting; see the README)."""

    max_file_bytes: int = 200 * GIB
    max_model_bytes: int = 1024 * GIB
    max_files: int = 1000
    max_in_progress: int = 20  # registrations of one owner copying at once (bulk owners exempt)
    # (requests, seconds) windows per caller, checked per instance; empty: no rate limit.
    rate_limits: tuple[tuple[int, float], ...] = ((2, 1.0), (100, 60.0), (500, 600.0))


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
    manifests_table: str
    job_queue_kind: str
    service_bus_connection_string: str | None
    service_bus_namespace: str | None
    service_bus_client_id: str | None
    service_bus_queue: str
    service_bus_max_deliveries: int
    bulk_owners: frozenset[str]
    jobs_queue: str
    sealing_key: bytes
    sealing_previous_keys: tuple[bytes, ...]
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
    quotas: Quotas = Quotas()
    max_body_bytes: int = 1024 * 1024
    # Manifest signing (registry/signing): a local EC P-256 private key (PEM), or in Azure the URI of
    # a Key Vault key the app signs with through the vault; public keys of earlier signing keys (PEM)
    # stay published so that what they signed still verifies.
    signing_key_pem: bytes | None = None
    signing_key_uri: str | None = None
    signing_previous_public_keys: tuple[bytes, ...] = ()
    # Events: the CloudEvents `source` (the registry's base URL), and the Event Grid topic they are
    # published to (none: no Event Grid).
    base_url: str = "http://127.0.0.1:7071"
    event_grid_endpoint: str | None = None
    # Webhooks (registry/services/webhooks.py): their tables, how many one owner may have, and the
    # first retry delay (the schedule grows from it; see registry/domain/webhooks.py).
    webhooks_table: str = "webhooks"
    webhook_deliveries_table: str = "webhookdeliveries"
    max_webhooks: int = 25
    webhook_retry_base_seconds: float = 30.0

    @property
    def trusts_principal_headers(self) -> bool:
        """Easy Auth strips client-sent principal headers; only then (or in dev mode, which is
        refused anywhere but on the local emulator) are they trusted."""
        return self.dev_mode or (self.running_in_azure and self.easy_auth_enabled)

    @property
    def identity_problem(self) -> str | None:
        """Why no caller can be trusted here, if that is so (every request then gets 401)."""
        if self.trusts_principal_headers:
            return None
        if self.running_in_azure:
            return "App Service Authentication (Easy Auth) is not enabled on this app (WEBSITE_AUTH_ENABLED)"
        return "not running behind App Service Authentication, and REGISTRY_DEV_MODE is off"


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
    if not value >= minimum:  # also refuses nan
        raise SettingsError(f"{key} must be at least {minimum}")
    return value


def _key(raw: str, setting: str) -> bytes:
    try:
        key = base64.b64decode(raw.strip(), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != 32:
        raise SettingsError(f"{setting} must hold 32-byte keys, base64-encoded")
    return key


def _previous_keys(env: Mapping[str, str]) -> tuple[bytes, ...]:
    raw = env.get("REGISTRY_SEALING_PREVIOUS_KEYS", "")
    return tuple(_key(part, "REGISTRY_SEALING_PREVIOUS_KEYS") for part in raw.split(",") if part.strip())


def _pem_values(env: Mapping[str, str], setting: str) -> tuple[bytes, ...]:
    """Comma-separated base64 PEM values (base64, so that a PEM fits in one app setting)."""
    values = []
    for part in env.get(setting, "").split(","):
        if not part.strip():
            continue
        try:
            pem = base64.b64decode(part.strip(), validate=True)
        except (binascii.Error, ValueError):
            pem = b""
        if not pem.startswith(b"-----BEGIN "):
            raise SettingsError(f"{setting} must hold PEM values, each base64-encoded (comma-separated)")
        values.append(pem)
    return tuple(values)


def _signing(
    env: Mapping[str, str], running_in_azure: bool
) -> tuple[bytes | None, str | None, tuple[bytes, ...]]:
    local = _pem_values(env, "REGISTRY_SIGNING_KEY")
    uri = (env.get("REGISTRY_SIGNING_KEY_ID") or "").strip() or None
    previous = _pem_values(env, "REGISTRY_SIGNING_PREVIOUS_PUBLIC_KEYS")
    if len(local) > 1:
        raise SettingsError("REGISTRY_SIGNING_KEY holds one private key (PEM, base64-encoded)")
    if local and uri:
        raise SettingsError(
            "set REGISTRY_SIGNING_KEY (a local key) or REGISTRY_SIGNING_KEY_ID (Key Vault), not both"
        )
    if running_in_azure and local:
        raise SettingsError(
            "REGISTRY_SIGNING_KEY (a private key in an app setting) is for local development: in Azure the "
            "app signs with a Key Vault key (REGISTRY_SIGNING_KEY_ID) that never leaves the vault"
        )
    if uri is not None:
        parts = urlsplit(uri)
        if parts.scheme != "https" or not parts.hostname or not parts.path.startswith("/keys/"):
            raise SettingsError(
                "REGISTRY_SIGNING_KEY_ID must be a Key Vault key URI, https://<vault>.vault.azure.net/keys/<name>/<version>"
            )
    return (local[0] if local else None), uri, previous


def _base_url(env: Mapping[str, str], running_in_azure: bool) -> str:
    """REGISTRY_BASE_URL (a custom domain), else the app's own host name in Azure."""
    raw = (env.get("REGISTRY_BASE_URL") or "").strip().rstrip("/")
    if not raw:
        host = env.get("WEBSITE_HOSTNAME") if running_in_azure else None
        return f"https://{host}" if host else "http://127.0.0.1:7071"
    parts = urlsplit(raw)
    if parts.scheme not in ("https", "http") or not parts.hostname or parts.query or parts.fragment:
        raise SettingsError(f"REGISTRY_BASE_URL must be an https URL without query, not {raw!r}")
    if running_in_azure and parts.scheme != "https":
        raise SettingsError("REGISTRY_BASE_URL must be https in Azure")
    return raw


def _event_grid_endpoint(env: Mapping[str, str]) -> str | None:
    raw = (env.get("REGISTRY_EVENT_GRID_ENDPOINT") or "").strip()
    if not raw:
        return None
    parts = urlsplit(raw)
    if parts.scheme != "https" or not parts.hostname:
        raise SettingsError(
            "REGISTRY_EVENT_GRID_ENDPOINT must be an Event Grid topic endpoint, "
            f"https://<topic>.<region>-1.eventgrid.azure.net/api/events, not {raw!r}"
        )
    return raw


def _rate_limits(env: Mapping[str, str]) -> tuple[tuple[int, float], ...]:
    raw = (env.get("REGISTRY_RATE_LIMITS") or DEFAULT_RATE_LIMITS).strip().lower()
    if raw == "off":
        return ()
    limits = []
    for part in raw.split(","):
        match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+(?:\.\d+)?)\s*", part)
        if match is None or int(match[1]) < 1 or float(match[2]) <= 0:
            raise SettingsError(
                "REGISTRY_RATE_LIMITS must be 'off' or comma-separated REQUESTS/SECONDS windows, "
                f"e.g. {DEFAULT_RATE_LIMITS}"
            )
        limits.append((int(match[1]), float(match[2])))
    return tuple(limits)


def _quotas(env: Mapping[str, str]) -> Quotas:
    return Quotas(
        max_file_bytes=int(_number(env, "REGISTRY_MAX_FILE_GIB", 200, 0.000001) * GIB),
        max_model_bytes=int(_number(env, "REGISTRY_MAX_MODEL_GIB", 1024, 0.000001) * GIB),
        max_files=int(_number(env, "REGISTRY_MAX_FILES", 1000, 1)),
        max_in_progress=int(_number(env, "REGISTRY_MAX_IN_PROGRESS", 20, 1)),
        rate_limits=_rate_limits(env),
    )


def _storage_is_local(connection_string: str | None) -> bool:
    """The connection string points at the local emulator (every endpoint on loopback)."""
    if connection_string is None:
        return False
    parts = dict(part.split("=", 1) for part in connection_string.split(";") if "=" in part and part.strip())
    if parts.get("UseDevelopmentStorage", "").lower() == "true":
        return True
    endpoints = [v for k, v in parts.items() if k.endswith("Endpoint") and k != "DefaultEndpointsProtocol"]
    return bool(endpoints) and all((urlsplit(e).hostname or "") in _LOOPBACK for e in endpoints)


def _source_hosts(env: Mapping[str, str]) -> tuple[str, ...]:
    raw = env.get("REGISTRY_ALLOWED_SOURCE_HOSTS", "*.blob.core.windows.net")
    patterns = tuple(h.strip().lower() for h in raw.split(",") if h.strip())
    for pattern in patterns:
        problem = check_host_pattern(pattern)
        if problem:
            raise SettingsError(f"REGISTRY_ALLOWED_SOURCE_HOSTS: {pattern!r} {problem}")
    return patterns


def _check_development_only(
    env: Mapping[str, str], connection_string: str | None, running_in_azure: bool
) -> tuple[bool, bool]:
    dev_mode = _flag(env, "REGISTRY_DEV_MODE")
    allow_insecure = _flag(env, "REGISTRY_ALLOW_INSECURE_SOURCES")
    if running_in_azure and (dev_mode or allow_insecure):
        raise SettingsError(
            "REGISTRY_DEV_MODE and REGISTRY_ALLOW_INSECURE_SOURCES are for local development "
            "and are refused when the app runs in Azure"
        )
    if (dev_mode or allow_insecure) and not _storage_is_local(connection_string):
        raise SettingsError(
            "REGISTRY_DEV_MODE trusts identity headers anyone can send, and REGISTRY_ALLOW_INSECURE_SOURCES "
            "lets sources be plain http: both are for the local storage emulator only, so they need "
            f"{STORAGE_CONNECTION} to point at loopback endpoints (or UseDevelopmentStorage=true)"
        )
    return dev_mode, allow_insecure


def load_settings(env: Mapping[str, str]) -> Settings:
    running_in_azure = bool(env.get("WEBSITE_INSTANCE_ID") or env.get("WEBSITE_SITE_NAME"))
    connection_string = env.get(STORAGE_CONNECTION) or None
    account_name = env.get(f"{STORAGE_CONNECTION}__accountName") or None
    if connection_string is None and account_name is None:
        raise SettingsError(
            f"set {STORAGE_CONNECTION} (a connection string) or {STORAGE_CONNECTION}__accountName"
        )
    dev_mode, allow_insecure = _check_development_only(env, connection_string, running_in_azure)
    kind = job_queue_kind(env)
    signing_key_pem, signing_key_uri, signing_previous = _signing(env, running_in_azure)
    sb_connection = env.get(SERVICE_BUS_CONNECTION) or None
    sb_namespace = env.get(f"{SERVICE_BUS_CONNECTION}__fullyQualifiedNamespace") or None
    if kind == "servicebus" and sb_connection is None and sb_namespace is None:
        raise SettingsError(
            f"REGISTRY_JOB_QUEUE=servicebus needs {SERVICE_BUS_CONNECTION} (a connection string) "
            f"or {SERVICE_BUS_CONNECTION}__fullyQualifiedNamespace"
        )
    return Settings(
        storage_connection_string=connection_string,
        storage_account_name=account_name,
        storage_client_id=env.get(f"{STORAGE_CONNECTION}__clientId") or None,
        models_container=env.get("REGISTRY_MODELS_CONTAINER", "models"),
        registrations_table=env.get("REGISTRY_REGISTRATIONS_TABLE", "registrations"),
        files_table=env.get("REGISTRY_FILES_TABLE", "registrationfiles"),
        catalog_table=env.get("REGISTRY_CATALOG_TABLE", "catalog"),
        changes_table=env.get("REGISTRY_CHANGES_TABLE", "registrationchanges"),
        manifests_table=env.get("REGISTRY_MANIFESTS_TABLE", "manifests"),
        job_queue_kind=kind,
        service_bus_connection_string=sb_connection,
        service_bus_namespace=sb_namespace,
        service_bus_client_id=env.get(f"{SERVICE_BUS_CONNECTION}__clientId") or None,
        service_bus_queue=env.get(SERVICE_BUS_QUEUE_SETTING) or JOBS_QUEUE,
        service_bus_max_deliveries=int(_number(env, "REGISTRY_SERVICEBUS_MAX_DELIVERIES", 5, 1)),
        bulk_owners=frozenset(o.strip() for o in env.get("REGISTRY_BULK_OWNERS", "").split(",") if o.strip()),
        jobs_queue=JOBS_QUEUE,
        sealing_key=_key(env.get("REGISTRY_SEALING_KEY", ""), "REGISTRY_SEALING_KEY"),
        sealing_previous_keys=_previous_keys(env),
        dev_mode=dev_mode,
        running_in_azure=running_in_azure,
        easy_auth_enabled=_flag(env, "WEBSITE_AUTH_ENABLED"),
        allowed_source_hosts=_source_hosts(env),
        allow_insecure_sources=allow_insecure,
        copy_block_size=int(_number(env, "REGISTRY_COPY_BLOCK_MIB", 8, 1) * 1024 * 1024),
        copy_concurrency=int(_number(env, "REGISTRY_COPY_CONCURRENCY", 8, 1)),
        copy_time_budget_seconds=_number(env, "REGISTRY_COPY_TIME_BUDGET_SECONDS", 200, 0.1),
        # Renewed at every checkpoint (every few seconds): short, so a dead worker's copy resumes soon.
        copy_lease_seconds=_number(env, "REGISTRY_COPY_LEASE_SECONDS", 30, 3),
        stale_after_seconds=_number(env, "REGISTRY_STALE_AFTER_SECONDS", 900, 1),
        quotas=_quotas(env),
        signing_key_pem=signing_key_pem,
        signing_key_uri=signing_key_uri,
        signing_previous_public_keys=signing_previous,
        base_url=_base_url(env, running_in_azure),
        event_grid_endpoint=_event_grid_endpoint(env),
        webhooks_table=env.get("REGISTRY_WEBHOOKS_TABLE", "webhooks"),
        webhook_deliveries_table=env.get("REGISTRY_WEBHOOK_DELIVERIES_TABLE", "webhookdeliveries"),
        max_webhooks=int(_number(env, "REGISTRY_MAX_WEBHOOKS", 25, 1)),
        webhook_retry_base_seconds=_number(env, "REGISTRY_WEBHOOK_RETRY_BASE_SECONDS", 30, 0.1),
    )


@cache
def current_settings() -> Settings:
    """The settings of this process, read once (app settings change only with a restart)."""
    return load_settings(os.environ)
