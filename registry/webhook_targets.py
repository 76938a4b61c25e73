"""Where webhooks may be sent: the URL rules (checked when a subscription is saved) and the address
rules (checked at every delivery, on what the name resolves to then).

URL: `https` only; a strict public DNS name (never an IP address in any notation); any port; a
path and query of URL characters; no user info, no fragment; at most 2,048 characters. It is
rebuilt from its parsed parts. In dev mode (local development only) `http` and the loopback hosts
`localhost`, `127.0.0.1` and `[::1]` are also taken, so a receiver on this machine can be used.

Addresses: every address the name resolves to must be a global unicast address: not loopback,
private (RFC 1918, unique local), link-local, shared (CGNAT, 100.64/10), multicast, reserved,
unspecified or documentation space, nor one of those carried inside an IPv6 address (IPv4-mapped,
IPv4-compatible, NAT64, 6to4, Teredo), nor a cloud metadata or platform endpoint. If any address is
refused the delivery is refused (a name resolving to both is not trusted), and the connection goes
to the address checked, never to a second resolution (DNS rebinding cannot swap it).
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from registry.sources import is_dns_name

MAX_URL_LENGTH = 2048
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "[::1]"})
_PATH_CHARS = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;=:@%/]*")
_QUERY_CHARS = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;=:@%/?]*")
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})|%(?:[01][0-9A-Fa-f]|7[Ff])")
# Addresses of cloud platforms' own services that sit on otherwise global addresses (or that a
# provider documents as its metadata endpoint): Azure's wire server, Alibaba's and Oracle's
# metadata, AWS's IPv6 metadata.
PLATFORM_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in ("168.63.129.16", "169.254.169.254", "100.100.100.200", "192.0.0.192", "fd00:ec2::254")
)
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Sequence[str]]


class TargetRefused(ValueError):
    """Why a webhook URL or address is refused (it names the rule, never the URL's query)."""


@dataclass(frozen=True)
class Target:
    """A checked URL, split as the connection needs it."""

    scheme: str
    host: str  # the name (lower-case), or a loopback literal in dev mode
    port: int
    path: str  # path and query

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        return self.host if self.port == default else f"{self.host}:{self.port}"


def _check_characters(url: str) -> None:
    if len(url) > MAX_URL_LENGTH:
        raise TargetRefused(f"must be at most {MAX_URL_LENGTH} characters")
    if not url.isascii() or any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in url):
        raise TargetRefused("must be ASCII without whitespace or control characters")
    if "\\" in url or "#" in url:
        raise TargetRefused("must not contain a backslash or a fragment")


def _check_host(scheme: str, host: str, port: str, dev_mode: bool) -> None:
    loopback = dev_mode and host in LOOPBACK_NAMES
    if scheme != "https" and not loopback:
        raise TargetRefused("must use https")
    if not loopback and not is_dns_name(host):
        raise TargetRefused(
            "host must be a DNS name of at most 253 characters (letters, digits, hyphens and dots; "
            "no IP address)"
        )
    if port and not (port.isdigit() and 0 < int(port) < 65536 and not port.startswith("0")):
        raise TargetRefused("has an invalid port")


def check_url(url: str, *, dev_mode: bool = False) -> str:
    """The URL rebuilt from its checked parts; TargetRefused naming the rule it breaks."""
    _check_characters(url)
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if not url.lower().startswith(f"{scheme}://") or scheme not in ("https", "http"):
        raise TargetRefused("must be an absolute https URL")
    if "@" in parts.netloc:
        raise TargetRefused("must not carry user credentials")
    host, port = _split_port(parts.netloc)
    host = host.lower()
    _check_host(scheme, host, port, dev_mode)
    path = parts.path or "/"
    if not path.startswith("/") or not _PATH_CHARS.fullmatch(path) or not _QUERY_CHARS.fullmatch(parts.query):
        raise TargetRefused("must have a path and query of URL characters (percent-encode others)")
    if _BAD_ESCAPE.search(path) or _BAD_ESCAPE.search(parts.query):
        raise TargetRefused("must not percent-encode control characters or hold a stray '%'")
    netloc = f"{host}:{port}" if port else host
    return f"{scheme}://{netloc}{path}" + (f"?{parts.query}" if parts.query else "")


def target_of(url: str, *, dev_mode: bool = False) -> Target:
    checked = check_url(url, dev_mode=dev_mode)
    parts = urlsplit(checked)
    host, port = _split_port(parts.netloc)
    default = 443 if parts.scheme == "https" else 80
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    return Target(parts.scheme, host, int(port) if port else default, path)


def _split_port(netloc: str) -> tuple[str, str]:
    if netloc.startswith("["):
        host, _, rest = netloc.partition("]")
        return host + "]", rest[1:] if rest.startswith(":") else rest
    host, _, port = netloc.partition(":")
    return host, port


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, compatible, NAT64, 6to4, Teredo), if any."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if any(address in network for network in _NAT64) or (
        int(address) >> 32 == 0 and int(address) > 0xFFFF  # ::a.b.c.d, IPv4-compatible (deprecated)
    ):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def address_problem(address: Address, *, loopback_ok: bool = False) -> str | None:
    """Why a webhook may not be sent to this address, or None."""
    if loopback_ok and address.is_loopback:
        return None
    if address in PLATFORM_ADDRESSES:
        return "a cloud metadata or platform address"
    if isinstance(address, ipaddress.IPv6Address):
        inner = _embedded_ipv4(address)
        if inner is not None:
            problem = address_problem(inner, loopback_ok=loopback_ok)
            return f"an IPv6 address carrying {problem}" if problem else None
    kinds = (
        ("loopback", address.is_loopback),
        ("unspecified", address.is_unspecified),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("private", address.is_private),
        ("reserved", address.is_reserved),
    )
    for kind, is_kind in kinds:
        if is_kind:
            return f"a {kind} address"
    if not address.is_global:  # shared address space (100.64/10) and the like
        return "not a global address"
    return None


def system_resolver(host: str, port: int) -> list[str]:
    """Every address the host name resolves to now (TCP)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def resolve(target: Target, resolver: Resolver, *, loopback_ok: bool = False) -> Address:
    """The address to connect to: every address the name resolves to must be allowed (and, in dev
    mode, a loopback literal is taken as it is); TargetRefused otherwise."""
    literal = target.host.strip("[]")
    if loopback_ok and target.host in LOOPBACK_NAMES and literal != "localhost":
        return ipaddress.ip_address(literal)
    try:
        found = [ipaddress.ip_address(a.split("%", 1)[0]) for a in resolver(target.host, target.port)]
    except (OSError, UnicodeError) as error:
        raise TargetRefused(f"the host name does not resolve ({type(error).__name__})") from None
    except ValueError:
        raise TargetRefused("the host name resolves to something that is not an IP address") from None
    if not found:
        raise TargetRefused("the host name resolves to no address")
    for address in found:
        problem = address_problem(address, loopback_ok=loopback_ok)
        if problem:
            raise TargetRefused(f"the host name resolves to {problem}")
    return found[0]


def webhook_url_pattern(*, dev_mode: bool) -> str:
    """The URLs `check_url` takes, as a JSON Schema pattern (it cannot state the host name's
    length limit, 253 characters)."""
    label = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
    # At least two labels; the last is not all digits nor 0x-something (no IPv4 in any notation).
    name = rf"(?:{label}\.)+(?![0-9]+(?:[:/?]|$))(?!0x){label}"
    port = r"(?::(?:[1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?"
    origins = [rf"https://{name}{port}"]
    if dev_mode:
        origins.append(rf"https?://(?:localhost|127\.0\.0\.1|\[::1\]){port}")
    byte = r"%(?:[2-6][0-9A-Fa-f]|7[0-9A-Ea-e]|[89A-Fa-f][0-9A-Fa-f])"
    path = rf"(?:/(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/]|{byte})*)?"
    query = rf"(?:\?(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/?]|{byte})*)?"
    return rf"^(?:{'|'.join(origins)}){path}{query}$"
