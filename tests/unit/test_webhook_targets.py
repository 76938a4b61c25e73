"""The webhook SSRF rules: URLs refused when a subscription is saved, and what names resolve to,
refused at every delivery before anything is sent (the resolver is injected)."""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Sequence

import pytest

from registry.adapters.webhook_http import PinnedWebhookClient
from registry.webhook_targets import (
    Resolver,
    TargetRefused,
    address_problem,
    check_url,
    resolve,
    target_of,
    webhook_url_pattern,
)

REFUSED_URLS = [
    "http://hooks.example.com/x",  # not https
    "HTTP://hooks.example.com/x",
    "ftp://hooks.example.com/x",
    "file:///etc/passwd",
    "gopher://hooks.example.com/x",
    "//hooks.example.com/x",  # not absolute
    "https:/hooks.example.com/x",
    "https://127.0.0.1/x",  # IP literals, in every notation
    "https://10.0.0.1/x",
    "https://169.254.169.254/latest/meta-data/",
    "https://[::1]/x",
    "https://[fd00:ec2::254]/x",
    "https://[::ffff:127.0.0.1]/x",
    "https://2130706433/x",  # 127.0.0.1 as a number
    "https://0x7f.0x0.0x0.0x1/x",
    "https://0177.0.0.1/x",
    "https://127.1/x",
    "https://localhost/x",  # one label: not a public DNS name
    "https://metadata/computeMetadata/v1/",
    "https://user:password@hooks.example.com/x",  # user info
    "https://hooks.example.com@10.0.0.1/x",
    "https://hooks.example.com/x#fragment",
    "https://hooks.example.com:0/x",  # ports
    "https://hooks.example.com:65536/x",
    "https://hooks.example.com:080/x",
    "https://hooks.example.com:http/x",
    "https://hooks.example.com/a b",  # characters
    "https://hooks.example.com/\x00",
    "https://hooks.example.com/%00",
    "https://hooks.example.com/%zz",
    "https://hooks.example.com\\@evil.example.com/",
    "https://hooks_example.com/x",
    "https://-hooks.example.com/x",
    "https://hooks.exämple.com/x",
    "https://hooks.example.com./x",
    "https://" + "a" * 64 + ".example.com/x",  # a label over 63 characters
    "https://" + ".".join(["abcdefghi"] * 26) + ".com/x",  # a name over 253 characters
    "https://hooks.example.com/" + "a" * 2100,
    "",
]

REFUSED_RESOLUTIONS = [
    ["127.0.0.1"],
    ["127.8.9.10"],
    ["0.0.0.0"],
    ["10.1.2.3"],
    ["172.16.0.1"],
    ["172.31.255.254"],
    ["192.168.0.10"],
    ["169.254.169.254"],  # cloud metadata (link-local)
    ["169.254.0.1"],
    ["100.64.0.1"],  # shared address space (CGNAT)
    ["100.100.100.200"],  # Alibaba's metadata
    ["168.63.129.16"],  # Azure's wire server: a public address that is the platform's own
    ["192.0.0.192"],  # Oracle's metadata
    ["192.0.2.1"],  # documentation
    ["198.18.0.1"],  # benchmarking
    ["224.0.0.1"],  # multicast
    ["239.255.255.250"],
    ["240.0.0.1"],  # reserved
    ["255.255.255.255"],
    ["::1"],
    ["::"],
    ["fe80::1"],
    ["fe80::1%eth0"],
    ["fc00::1"],
    ["fd00:ec2::254"],  # AWS's IPv6 metadata
    ["ff02::1"],
    ["::ffff:127.0.0.1"],  # IPv4-mapped
    ["::ffff:169.254.169.254"],
    ["::ffff:10.0.0.1"],
    ["::127.0.0.1"],  # IPv4-compatible
    ["64:ff9b::a00:1"],  # NAT64 of 10.0.0.1
    ["64:ff9b::a9fe:a9fe"],  # NAT64 of 169.254.169.254
    ["2002:a00:1::"],  # 6to4 of 10.0.0.1
    ["2001:db8::1"],  # documentation
    ["93.184.216.34", "10.0.0.1"],  # one bad address among good ones: refused
    ["2606:2800:220:1::", "::1"],
    [],  # resolves to nothing
    ["not-an-address"],
]


def resolver_of(addresses: Sequence[str]) -> Resolver:
    def resolve_to(host: str, port: int) -> Sequence[str]:
        return addresses

    return resolve_to


def _never_connects(*args: object, **kwargs: object) -> socket.socket:
    raise AssertionError("a refused delivery opened a connection")


@pytest.mark.parametrize("url", REFUSED_URLS, ids=range(len(REFUSED_URLS)))
def test_a_webhook_url_that_breaks_a_rule_is_refused(url: str) -> None:
    with pytest.raises(TargetRefused):
        check_url(url)
    # The schema says the same (its maxLength the length; the host name's length it cannot state).
    beyond_the_pattern = len(url) > 2048 or len([*url.split("/"), "", "", ""][2]) > 253
    assert re.fullmatch(webhook_url_pattern(dev_mode=False), url) is None or beyond_the_pattern


@pytest.mark.parametrize(
    "addresses", REFUSED_RESOLUTIONS, ids=[",".join(a) or "none" for a in REFUSED_RESOLUTIONS]
)
def test_a_name_resolving_to_a_refused_address_gets_nothing(
    addresses: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(socket, "create_connection", _never_connects)
    client = PinnedWebhookClient(resolver=resolver_of(addresses))
    attempt = client.post("https://hooks.example.com/x", b"{}", {})
    assert attempt.status is None and attempt.error.startswith("refused: the host name resolves to")
    assert not attempt.ok


def test_the_tables_are_at_least_twenty_five_each() -> None:
    assert len(REFUSED_URLS) >= 25 and len(REFUSED_RESOLUTIONS) >= 25


def test_a_name_that_does_not_resolve_gets_nothing() -> None:
    def fails(host: str, port: int) -> Sequence[str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    attempt = PinnedWebhookClient(resolver=fails).post("https://nowhere.example.com/x", b"{}", {})
    assert attempt.error == "refused: the host name does not resolve (gaierror)"


ACCEPTED = [
    ("https://hooks.example.com", "https://hooks.example.com/"),
    ("https://Hooks.Example.COM/x?a=1&b=%2F", "https://hooks.example.com/x?a=1&b=%2F"),
    ("https://hooks.example.com:8443/in/", "https://hooks.example.com:8443/in/"),
    ("https://xn--bcher-kva.example/x", "https://xn--bcher-kva.example/x"),
    ("https://a.b.c.d.example.co.uk/p@x:y", "https://a.b.c.d.example.co.uk/p@x:y"),
]


@pytest.mark.parametrize(("url", "rebuilt"), ACCEPTED)
def test_a_public_https_url_is_accepted_as_it_is_rebuilt(url: str, rebuilt: str) -> None:
    assert check_url(url) == rebuilt
    assert re.fullmatch(webhook_url_pattern(dev_mode=False), rebuilt)


def test_dev_mode_takes_loopback_receivers_and_only_them() -> None:
    for url in ("http://127.0.0.1:8000/x", "http://localhost:8000/x", "http://[::1]:8000/x"):
        assert check_url(url, dev_mode=True) == url
        assert re.fullmatch(webhook_url_pattern(dev_mode=True), url)
        assert re.fullmatch(webhook_url_pattern(dev_mode=False), url) is None
    for url in ("http://10.0.0.1/x", "http://hooks.example.com/x", "http://127.0.0.2/x"):
        with pytest.raises(TargetRefused):
            check_url(url, dev_mode=True)
    loopback = resolve(
        target_of("http://localhost:9/x", dev_mode=True), resolver_of(["127.0.0.1"]), loopback_ok=True
    )
    assert str(loopback) == "127.0.0.1"
    with pytest.raises(TargetRefused, match="private"):
        resolve(target_of("https://hooks.example.com/x"), resolver_of(["10.0.0.1"]), loopback_ok=True)


def test_a_public_address_passes_and_is_the_one_connected_to() -> None:
    target = target_of("https://hooks.example.com/x")
    chosen = resolve(target, resolver_of(["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"]))
    assert chosen == ipaddress.ip_address("93.184.216.34")
    assert address_problem(ipaddress.ip_address("2606:4700::1111")) is None
    assert address_problem(ipaddress.ip_address("8.8.8.8")) is None
