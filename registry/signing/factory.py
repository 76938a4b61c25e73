"""The signer these settings name: a Key Vault key (Azure) or a local key (development)."""

from __future__ import annotations

from typing import Any

from registry.settings import Settings, SettingsError
from registry.signing.signers import KeyVaultSigner, LocalKeySigner, Signer


def signer_from_settings(settings: Settings, credential: Any = None) -> Signer:
    """`credential` reaches Key Vault (default: the managed identity of AzureWebJobsStorage__clientId,
    the app's one identity, through DefaultAzureCredential)."""
    if settings.signing_key_uri:
        if credential is None:
            from azure.identity import DefaultAzureCredential

            credential = DefaultAzureCredential(managed_identity_client_id=settings.storage_client_id)
        return KeyVaultSigner.connect(settings.signing_key_uri, credential)
    if settings.signing_key_pem:
        return LocalKeySigner(settings.signing_key_pem)
    raise SettingsError(
        "no signing key: set REGISTRY_SIGNING_KEY_ID (a Key Vault key URI) or, locally, REGISTRY_SIGNING_KEY "
        "(an EC P-256 private key, PEM, base64-encoded)"
    )
