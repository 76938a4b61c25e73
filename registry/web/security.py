"""Security headers, cookies and the CSRF defence of the catalog's pages.

CSRF: a state-changing request (every POST) must carry, in a form field or the
`X-Catalog-CSRF` header, a token that is an HMAC of the browser's session cookie and the
caller's principal id under a key derived from the registry's sealing key. The session cookie
is SameSite=Strict and HttpOnly, so another site can neither send it along with a forged form
nor read it to compute a token; the token works behind Easy Auth (whose own session cookie a
forged request would carry) because Easy Auth knows nothing of it. A request whose
`Sec-Fetch-Site` or `Origin` says it came from another site is refused before that.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from http.cookies import CookieError, SimpleCookie
from urllib.parse import urlsplit

SESSION_COOKIE = "catalog_session"
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-catalog-csrf"
COOKIE_PATH = "/api/catalog"


def content_security_policy(*, dev_mode: bool) -> str:
    """No inline script or style, nothing from another origin but https images (index pages)."""
    # Dev mode: the emulator's blob endpoint serves the model's own images over http on loopback.
    images = "'self' https:" if not dev_mode else "'self' https: http://127.0.0.1:*"
    return "; ".join(
        (
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            f"img-src {images}",
            "connect-src 'self'",
            "form-action 'self'",
            "frame-ancestors 'none'",
            "base-uri 'none'",
        )
    )


def security_headers(*, dev_mode: bool) -> dict[str, str]:
    return {
        "Content-Security-Policy": content_security_policy(dev_mode=dev_mode),
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "same-origin",  # with no-referrer, browsers send `Origin: null` on forms
        "Cross-Origin-Opener-Policy": "same-origin",
        "Cross-Origin-Resource-Policy": "same-origin",
        "Permissions-Policy": "camera=(), microphone=(), geolocation=(), clipboard-write=(self)",
    }


def cookies_of(headers: Mapping[str, str]) -> dict[str, str]:
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(headers.get("cookie") or "")
    except CookieError:
        return {}
    return {name: morsel.value for name, morsel in jar.items()}


def set_cookie(name: str, value: str, *, secure: bool, max_age: int | None = None) -> str:
    """A Set-Cookie value: HttpOnly, SameSite=Strict, only for the catalog's paths."""
    parts = [f"{name}={value}", f"Path={COOKIE_PATH}", "HttpOnly", "SameSite=Strict"]
    if max_age is not None:
        parts.append(f"Max-Age={max_age}")
    if secure:
        parts.append("Secure")
    return "; ".join(parts)


def new_session() -> str:
    return secrets.token_urlsafe(32)


def csrf_key(sealing_key: bytes) -> bytes:
    """A key of its own for CSRF tokens, derived from the sealing key (the same on every instance)."""
    return hmac.new(sealing_key, b"registry web catalog csrf v1", hashlib.sha256).digest()


def csrf_token(key: bytes, session: str, principal_id: str) -> str:
    message = f"{session}\n{principal_id}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def csrf_valid(key: bytes, session: str, principal_id: str, token: str) -> bool:
    if not session or not token:
        return False
    return hmac.compare_digest(csrf_token(key, session, principal_id), token)


def cross_site(headers: Mapping[str, str], url: str) -> bool:
    """Whether the browser says the request came from another site (older browsers say nothing)."""
    fetch_site = (headers.get("sec-fetch-site") or "").lower()
    if fetch_site and fetch_site not in ("same-origin", "none"):
        return True
    origin = headers.get("origin")
    if origin and origin != "null":
        here = urlsplit(url)
        there = urlsplit(origin)
        forwarded = (headers.get("x-forwarded-host") or "").split(",")[0].strip()
        return there.netloc not in {here.netloc, forwarded} - {""}
    return origin == "null"
