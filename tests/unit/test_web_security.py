"""Security headers, the CSRF token and the cross-site check (security.py)."""

from __future__ import annotations

from registry.web import security

KEY = security.csrf_key(b"s" * 32)


def test_the_csp_allows_no_inline_script_no_framing_and_only_own_or_https_images() -> None:
    policy = dict(part.split(" ", 1) for part in security.content_security_policy(dev_mode=False).split("; "))
    assert policy["default-src"] == "'none'"
    assert policy["script-src"] == "'self'"
    assert policy["style-src"] == "'self'"
    assert policy["img-src"] == "'self' https:"
    assert policy["frame-ancestors"] == "'none'"
    assert policy["form-action"] == "'self'"
    assert "unsafe" not in security.content_security_policy(dev_mode=True)


def test_every_security_header_is_set() -> None:
    headers = security.security_headers(dev_mode=False)
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "same-origin"
    assert headers["X-Frame-Options"] == "DENY"


def test_a_token_is_bound_to_the_session_and_the_principal() -> None:
    token = security.csrf_token(KEY, "session-1", "alice")
    assert security.csrf_valid(KEY, "session-1", "alice", token)
    assert not security.csrf_valid(KEY, "session-2", "alice", token)
    assert not security.csrf_valid(KEY, "session-1", "bob", token)
    assert not security.csrf_valid(security.csrf_key(b"t" * 32), "session-1", "alice", token)
    assert not security.csrf_valid(KEY, "", "alice", security.csrf_token(KEY, "", "alice"))
    assert not security.csrf_valid(KEY, "session-1", "alice", "")


def test_cross_site_requests_are_recognised_by_fetch_metadata_or_origin() -> None:
    url = "https://registry.example/api/catalog/register"
    assert security.cross_site({"sec-fetch-site": "cross-site"}, url)
    assert security.cross_site({"sec-fetch-site": "same-site"}, url)
    assert security.cross_site({"origin": "https://evil.example"}, url)
    assert security.cross_site({"origin": "null"}, url)
    assert not security.cross_site(
        {"sec-fetch-site": "same-origin", "origin": "https://registry.example"}, url
    )
    assert not security.cross_site({}, url)  # older browsers: the token alone decides


def test_cookies_are_http_only_same_site_strict_and_secure_over_https() -> None:
    cookie = security.set_cookie("catalog_session", "v", secure=True)
    assert cookie == "catalog_session=v; Path=/api/catalog; HttpOnly; SameSite=Strict; Secure"
    assert "Secure" not in security.set_cookie("catalog_session", "v", secure=False)
    assert security.cookies_of({"cookie": "a=1; catalog_session=xyz"}) == {"a": "1", "catalog_session": "xyz"}
