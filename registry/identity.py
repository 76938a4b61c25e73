"""The caller, as App Service Authentication (Easy Auth) passes it in request headers."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass

from registry.validation import is_identifier

_ID_CLAIMS = (
    "http://schemas.microsoft.com/identity/claims/objectidentifier",
    "oid",
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/nameidentifier",
    "sub",
)
_NAME_CLAIMS = ("name", "preferred_username", "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name")


@dataclass(frozen=True)
class Principal:
    id: str  # immutable: what ownership and authorization use
    name: str  # for display


def _from_encoded(encoded: str) -> Principal | None:
    try:
        data = json.loads(base64.b64decode(encoded + "=" * (-len(encoded) % 4)))
        claims = {c["typ"]: c["val"] for c in data.get("claims", []) if isinstance(c, dict)}
    except (binascii.Error, ValueError, KeyError, TypeError, AttributeError):
        return None
    name_claims = (data.get("name_typ"), *_NAME_CLAIMS)
    principal_id = next((claims[c] for c in _ID_CLAIMS if c in claims), None)
    name = next((claims[c] for c in name_claims if c and c in claims), None)
    if not isinstance(principal_id, str):
        return None
    return Principal(principal_id, name if isinstance(name, str) else principal_id)


def principal_from_headers(headers: Mapping[str, str], *, trusted: bool) -> Principal | None:
    """The caller, or None when there is none or the headers cannot be trusted here.

    `headers` must look names up case-insensitively (as func.HttpRequest.headers does).
    """
    if not trusted:
        return None
    principal_id = headers.get("x-ms-client-principal-id")
    name = headers.get("x-ms-client-principal-name")
    principal = Principal(principal_id, name or principal_id) if principal_id else None
    if principal is None and headers.get("x-ms-client-principal"):
        principal = _from_encoded(headers["x-ms-client-principal"])
    # Owner ids become path segments and table keys: accept only the safe alphabet (GUIDs fit).
    if principal is None or not is_identifier(principal.id):
        return None
    return principal
