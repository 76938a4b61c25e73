"""The caller from Easy Auth's principal headers, trusted only where the settings say so."""

from __future__ import annotations

import base64
import json
from typing import Any

import azure.functions as func
import pytest

from registry.identity import Principal, principal_from_headers

OID = "4f1c9a52-7e1d-4c3a-9b0e-2d6f8a1b3c4d"
OID_CLAIM = "http://schemas.microsoft.com/identity/claims/objectidentifier"


def headers(values: dict[str, str]) -> Any:
    """Headers as the Functions runtime hands them over: looked up case-insensitively."""
    return func.HttpRequest(method="GET", url="http://localhost/api/x", headers=values, body=b"").headers


def encoded(document: Any) -> str:
    return base64.b64encode(json.dumps(document).encode()).decode()


def easy_auth(claims: list[dict[str, str]], **extra: Any) -> str:
    return encoded({"auth_typ": "aad", "claims": claims, **extra})


def test_principal_from_id_and_name_headers() -> None:
    found = principal_from_headers(
        headers({"X-MS-CLIENT-PRINCIPAL-ID": OID, "X-MS-CLIENT-PRINCIPAL-NAME": "alice@contoso.com"}),
        trusted=True,
    )
    assert found == Principal(OID, "alice@contoso.com")


def test_header_names_are_case_insensitive() -> None:
    found = principal_from_headers(headers({"x-ms-client-principal-id": OID}), trusted=True)
    assert found == Principal(OID, OID)


def test_name_defaults_to_the_id() -> None:
    assert principal_from_headers(headers({"X-MS-CLIENT-PRINCIPAL-ID": OID}), trusted=True) == Principal(
        OID, OID
    )


@pytest.mark.parametrize("claim", [OID_CLAIM, "oid"])
def test_principal_from_encoded_header_object_id_claims(claim: str) -> None:
    value = easy_auth([{"typ": claim, "val": OID}, {"typ": "name", "val": "Alice"}])
    found = principal_from_headers(headers({"X-MS-CLIENT-PRINCIPAL": value}), trusted=True)
    assert found == Principal(OID, "Alice")


def test_encoded_header_uses_its_name_claim_type() -> None:
    value = easy_auth(
        [{"typ": "oid", "val": OID}, {"typ": "custom-name", "val": "Alice Custom"}], name_typ="custom-name"
    )
    assert principal_from_headers(headers({"X-MS-CLIENT-PRINCIPAL": value}), trusted=True) == Principal(
        OID, "Alice Custom"
    )


def test_encoded_header_without_padding_is_accepted() -> None:
    value = easy_auth([{"typ": "oid", "val": OID}]).rstrip("=")
    assert principal_from_headers(headers({"X-MS-CLIENT-PRINCIPAL": value}), trusted=True) == Principal(
        OID, OID
    )


def test_id_headers_take_precedence_over_the_encoded_header() -> None:
    value = easy_auth([{"typ": "oid", "val": "someone-else"}])
    found = principal_from_headers(
        headers({"X-MS-CLIENT-PRINCIPAL-ID": OID, "X-MS-CLIENT-PRINCIPAL": value}), trusted=True
    )
    assert found is not None
    assert found.id == OID


@pytest.mark.parametrize(
    "values",
    [
        {"X-MS-CLIENT-PRINCIPAL-ID": OID, "X-MS-CLIENT-PRINCIPAL-NAME": "alice"},
        {"X-MS-CLIENT-PRINCIPAL": easy_auth([{"typ": "oid", "val": OID}])},
    ],
)
def test_untrusted_headers_give_no_principal(values: dict[str, str]) -> None:
    assert principal_from_headers(headers(values), trusted=False) is None


def test_no_headers_give_no_principal() -> None:
    assert principal_from_headers(headers({}), trusted=True) is None


@pytest.mark.parametrize(
    "unsafe_id",
    ["../other-owner", "a/b", "a:b", "a#b", "x" * 129, "-leading-dash", "with space", "ünicode"],
)
def test_unsafe_principal_id_gives_no_principal(unsafe_id: str) -> None:
    assert principal_from_headers(headers({"X-MS-CLIENT-PRINCIPAL-ID": unsafe_id}), trusted=True) is None
    value = easy_auth([{"typ": "oid", "val": unsafe_id}])
    assert principal_from_headers(headers({"X-MS-CLIENT-PRINCIPAL": value}), trusted=True) is None


@pytest.mark.parametrize(
    "value",
    [
        "not base64 at all!!",
        base64.b64encode(b"not json").decode(),
        encoded([1, 2, 3]),
        encoded({"claims": "nope"}),
        encoded({"claims": [{"typ": "oid"}]}),
        encoded({"claims": [{"typ": "oid", "val": 42}]}),
        encoded({"claims": [{"typ": "name", "val": "no id"}]}),
    ],
)
def test_malformed_encoded_header_gives_no_principal(value: str) -> None:
    assert principal_from_headers(headers({"X-MS-CLIENT-PRINCIPAL": value}), trusted=True) is None


def test_plain_lower_cased_dict_works_too() -> None:
    found = principal_from_headers({"x-ms-client-principal-id": OID}, trusted=True)
    assert found == Principal(OID, OID)
