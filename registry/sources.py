"""Where model files may be copied from: strict source URLs and the host allow-list.

A source URL is accepted only if every part of it parses one way: strict DNS host names (ASCII
letters, digits, hyphens, dots; valid label lengths; never an IP address in any notation), the
allow-list matched by whole labels, the default port, no user info, no fragment, nothing but
RFC 3986 characters. The URL is then rebuilt from its parsed parts, and only the rebuilt form is
kept and handed to any client, so no other parser gets to read the original differently.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

MAX_URL_LENGTH = 4096
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_PCT = re.compile(r"%(?![0-9A-Fa-f]{2})")
_PATH_CHARS = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;=:@%/]*")
_QUERY_CHARS = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;=:@%/?]*")
_CONTROL_ESCAPE = re.compile(r"%(?:[01][0-9A-Fa-f]|7[Ff])")
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost"})


class SourceRefused(ValueError):
    """Why a source URL is not accepted (never quoting the URL: it may hold a SAS)."""


def is_dns_name(host: str) -> bool:
    """A strict DNS host name: lower-case ASCII labels of 1-63 letters, digits and inner hyphens,
    at least two of them, at most 253 characters, and a last label that is not all digits (so
    that no IPv4 address, in any notation, passes as a name)."""
    labels = host.split(".")
    return (
        0 < len(host) <= 253
        and len(labels) >= 2
        and all(_LABEL.fullmatch(label) for label in labels)
        and not labels[-1].isdigit()
        and not labels[-1].startswith("0x")
    )


def check_host_pattern(pattern: str) -> str | None:
    """Why an allow-list entry is unusable, or None: entries are a host name, or '*.' and a
    suffix of whole labels."""
    name = pattern[2:] if pattern.startswith("*.") else pattern
    if not is_dns_name(name):
        return "must be a host name or '*.' followed by a host name (whole labels, no other wildcards)"
    return None


def host_allowed(host: str, patterns: tuple[str, ...]) -> bool:
    """Whole-label suffix match: '*.blob.core.windows.net' takes 'acct.blob.core.windows.net',
    never 'evilblob.core.windows.net' nor the bare suffix."""
    for pattern in patterns:
        if pattern.startswith("*."):
            if host.endswith(pattern[1:]) and len(host) > len(pattern) - 1:
                return True
        elif host == pattern:
            return True
    return False


def _split_port(netloc: str) -> tuple[str, str]:
    if netloc.startswith("["):  # an IPv6 literal: never a DNS name, refused below
        host, _, rest = netloc.partition("]")
        return host + "]", rest[1:] if rest.startswith(":") else rest
    host, _, port = netloc.partition(":")
    return host, port


def _check_characters(url: str) -> None:
    if len(url) > MAX_URL_LENGTH:
        raise SourceRefused(f"source URL must be at most {MAX_URL_LENGTH} characters")
    if not url.isascii():
        raise SourceRefused("source URL must be ASCII (percent-encode other characters)")
    if any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in url):
        raise SourceRefused("source URL must not contain whitespace or control characters")
    if "\\" in url:
        raise SourceRefused("source URL must not contain backslashes")
    if _PCT.search(url):
        raise SourceRefused("source URL has a '%' that is not a percent-encoded byte")


def _check_host(host: str, port: str, scheme: str, patterns: tuple[str, ...], local_ok: bool) -> str:
    """The port to keep in the rebuilt URL ('' for the default)."""
    if local_ok and host in LOOPBACK_HOSTS:  # the local storage emulator, in development only
        if port and not (port.isdigit() and 0 < int(port) < 65536):
            raise SourceRefused("source URL has an invalid port")
        return port
    if scheme != "https":
        raise SourceRefused("source URL must use https")
    if not is_dns_name(host):
        raise SourceRefused(
            "source host must be a DNS name (letters, digits, hyphens and dots; no IP address)"
        )
    if not host_allowed(host, patterns):
        allowed = ", ".join(patterns) or "none"
        raise SourceRefused(f"source host {host!r} is not allowed (allowed: {allowed})")
    if port not in ("", "443"):
        raise SourceRefused("source URL must use the default https port")
    return ""


def check_source_url(url: str, patterns: tuple[str, ...], *, local_emulator_ok: bool = False) -> str:
    """The URL rebuilt from its checked parts; SourceRefused naming the rule it breaks.

    `local_emulator_ok` (development only) also takes http URLs of the emulator on loopback.
    """
    _check_characters(url)
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http") or not url.lower().startswith(f"{scheme}://"):
        raise SourceRefused("source must be an absolute https URL")
    if "@" in parts.netloc:
        raise SourceRefused("source URL must not carry user credentials")
    if parts.fragment or "#" in url:
        raise SourceRefused("source URL must not have a fragment")
    host, port = _split_port(parts.netloc)
    host = host.lower()
    local_ok = local_emulator_ok and host in LOOPBACK_HOSTS
    if scheme == "http" and not local_ok:
        raise SourceRefused("source URL must use https")
    port = _check_host(host, port, scheme, patterns, local_ok)
    if not parts.path.startswith("/") or not _PATH_CHARS.fullmatch(parts.path):
        raise SourceRefused("source URL must have a path of URL characters (percent-encode others)")
    if _CONTROL_ESCAPE.search(parts.path):
        raise SourceRefused("source URL path must not encode control characters")
    if not _QUERY_CHARS.fullmatch(parts.query):
        raise SourceRefused("source URL query must be made of URL characters")
    netloc = f"{host}:{port}" if port else host
    return f"{scheme}://{netloc}{parts.path}" + (f"?{parts.query}" if parts.query else "")


def redact_url(url: str) -> str:
    """The URL without its query string (which holds the SAS token) or user info."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"
