"""Smoke check of a deployed registry: Easy Auth is in front of it and the app answers.

    REGISTRY_SMOKE_TOKEN=<bearer token for the API> python3 infra/smoke.py --api https://<app>/api/v1.0

1. An anonymous request must get 401: proof that App Service Authentication (Easy Auth) rejects
   callers without a token before the code runs.
2. The OpenAPI document must answer 200 with the token (from `az account get-access-token`; see
   deploy.sh): proof that Easy Auth accepts the app registration's tokens and that the app starts,
   loads its settings (including the sealing key from Key Vault) and serves.

A fresh deployment takes a while to start, so 5xx answers and connection errors are retried for a
few minutes. Each failure says what failed and what to check. Exit 0 when both pass. Standard
library only; the token is read from the environment, never from the command line.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

OPENAPI_PATH = "/openapi.json"


@dataclass(frozen=True)
class Answer:
    status: int | None  # None: no HTTP answer at all
    body: bytes
    error: str = ""


def fetch(url: str, token: str | None, timeout: float) -> Answer:
    request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310 (https URL)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return Answer(response.status, response.read())
    except urllib.error.HTTPError as error:
        return Answer(error.code, error.read())
    except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
        return Answer(None, b"", str(getattr(error, "reason", error)))


def fetch_until_up(url: str, token: str | None, attempts: int, wait: float, timeout: float) -> Answer:
    """Retries while the app is not up yet (no answer, or a 5xx)."""
    answer = Answer(None, b"", "not tried")
    for attempt in range(attempts):
        answer = fetch(url, token, timeout)
        if answer.status is not None and answer.status < 500:
            return answer
        if attempt + 1 < attempts:
            time.sleep(wait)
    return answer


def token_claims(token: str) -> dict[str, object]:
    """The audience, issuer and caller of a JWT (no signature check: for the message only)."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return {}
    return {key: claims[key] for key in ("aud", "iss", "appid", "azp", "scp", "ver") if key in claims}


def describe(answer: Answer) -> str:
    if answer.status is None:
        return f"no answer ({answer.error})"
    snippet = answer.body[:200].decode("utf-8", "replace").strip()
    return f"HTTP {answer.status}" + (f": {snippet}" if snippet else "")


def check_anonymous(api: str, attempts: int, wait: float, timeout: float) -> str | None:
    answer = fetch_until_up(api + OPENAPI_PATH, None, attempts, wait, timeout)
    if answer.status == 401:
        return None
    if answer.status is not None and answer.status < 400:
        return (
            f"an anonymous request got {describe(answer)}: Easy Auth is not in front of the app. Check "
            "`az webapp auth show -g <group> -n <app>`: platform.enabled true, requireAuthentication true, "
            "unauthenticatedClientAction Return401; and that no app setting WEBSITE_AUTH_ENABLED exists "
            "(it overrides the site's auth settings). Redeploy infra/main.bicep to restore them."
        )
    if answer.status is None or answer.status >= 500:
        return (
            f"the app did not come up: {describe(answer)}. Check the deployment log "
            "(`az functionapp log deployment show -g <group> -n <app>`) and Application Insights "
            "(exceptions, traces) for a start-up failure."
        )
    return f"an anonymous request got {describe(answer)}, not 401: check the URL ({api}) and Easy Auth."


def check_with_token(api: str, token: str, attempts: int, wait: float, timeout: float) -> str | None:
    answer = fetch_until_up(api + OPENAPI_PATH, token, attempts, wait, timeout)
    if answer.status == 200:
        try:
            document = json.loads(answer.body)
        except ValueError:
            document = None
        if isinstance(document, dict) and "openapi" in document:
            return None
        return f"the OpenAPI document is not an OpenAPI document: {describe(answer)}"
    if answer.status == 401:
        return (
            f"Easy Auth rejected the token ({describe(answer)}). The token carries {token_claims(token)}: "
            "its audience must be one of allowedAudiences (the client id, api://<client id>) and its "
            "issuer the tenant's v2.0 issuer (requestedAccessTokenVersion 2 on the app registration). "
            "In the app, a 401 with a token means it does not see Easy Auth as enabled: check "
            "WEBSITE_AUTH_ENABLED is not set as an app setting."
        )
    if answer.status == 403:
        return (
            f"the caller was refused ({describe(answer)}): if the app registration requires assignment "
            "(appRoleAssignmentRequired), assign this principal (see README, Granting users access)."
        )
    if answer.status is None or answer.status >= 500:
        return (
            f"the app failed to answer with a valid token: {describe(answer)}. Likely a start-up or "
            "settings failure: check the Key Vault reference status (`az functionapp config appsettings "
            "list`; a reference that did not resolve stays the raw @Microsoft.KeyVault(...) text), and "
            "Application Insights exceptions."
        )
    return f"the OpenAPI document answered {describe(answer)}, not 200."


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--api", required=True, help="API base URL, e.g. https://<app>.azurewebsites.net/api/v1.0"
    )
    parser.add_argument("--attempts", type=int, default=12, help="tries while the app is not up (default 12)")
    parser.add_argument("--wait", type=float, default=15.0, help="seconds between tries (default 15)")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per request (default 30)")
    args = parser.parse_args(argv)
    api = args.api.rstrip("/")
    token = os.environ.get("REGISTRY_SMOKE_TOKEN", "")
    failures = []
    anonymous = check_anonymous(api, args.attempts, args.wait, args.timeout)
    print(f"smoke: anonymous request gets 401 ... {'ok' if anonymous is None else 'FAILED'}", file=sys.stderr)
    if anonymous:
        failures.append(anonymous)
    if not token:
        failures.append("no token to test with: set REGISTRY_SMOKE_TOKEN (deploy.sh gets one from az)")
    else:
        authorized = check_with_token(api, token, args.attempts, args.wait, args.timeout)
        print(
            f"smoke: OpenAPI document with a token ... {'ok' if authorized is None else 'FAILED'}",
            file=sys.stderr,
        )
        if authorized:
            failures.append(authorized)
    for failure in failures:
        print(f"smoke: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
