"""Source URLs: strict host names, whole-label allow-list, default port, rebuilt before use.

Each crafted URL below was either accepted by the former fnmatch-based check or would be read
differently by another parser (the HTTP client's): all of them must be refused, and nothing
accepted may reach a client in any form but the one rebuilt from its checked parts.
"""

from __future__ import annotations

import pytest

from registry.sources import SourceRefused, check_host_pattern, check_source_url, host_allowed, is_dns_name

ALLOWED = ("*.blob.core.windows.net",)
PATH = "/c/model.bin?sv=2024&sig=abc%2Bdef%3D"

REFUSED = [
    # backslashes, and look-alikes of '/', '\' and '.'
    ("https://evil.example\\.blob.core.windows.net" + PATH, "backslash"),
    ("https://evil.example%5C.blob.core.windows.net" + PATH, "DNS name"),
    ("https://evil.example\uff3c.blob.core.windows.net" + PATH, "ASCII"),  # full-width reverse solidus
    ("https://evil.example\u2215.blob.core.windows.net" + PATH, "ASCII"),  # division slash
    ("https://acct\uff0eblob.core.windows.net" + PATH, "ASCII"),  # full-width full stop
    ("https://acct\u3002blob.core.windows.net" + PATH, "ASCII"),  # ideographic full stop
    ("https://\u0430cct.blob.core.windows.net" + PATH, "ASCII"),  # Cyrillic a
    ("https://acct.blob.core.windows.net\\@evil.example" + PATH, "backslash"),
    ("https://acct.blob.core.windows.net/c\\..\\..\\x" + "?sig=1", "backslash"),
    # percent-encoding where it does not belong
    ("https://acct%2Eblob.core.windows.net" + PATH, "DNS name"),
    ("https://evil.example%2F.blob.core.windows.net" + PATH, "DNS name"),
    ("https://acct.blob.core.windows.net/c/%zz" + "?sig=1", "percent"),
    ("https://acct.blob.core.windows.net/c/%00model.bin?sig=1", "control"),
    ("https://acct.blob.core.windows.net/c/%0d%0aX-Injected:1?sig=1", "control"),
    # user info
    ("https://user@acct.blob.core.windows.net" + PATH, "credentials"),
    ("https://user:pw@acct.blob.core.windows.net" + PATH, "credentials"),
    ("https://acct.blob.core.windows.net@evil.example" + PATH, "credentials"),
    ("https://evil.example#@acct.blob.core.windows.net" + PATH, "fragment"),
    # IP literals in every notation
    ("https://169.254.169.254/metadata?x=1", "DNS name"),
    ("https://127.0.0.1" + PATH, "DNS name"),
    ("https://2130706433" + PATH, "DNS name"),
    ("https://0x7f000001" + PATH, "DNS name"),
    ("https://0x7f.0.0.1" + PATH, "DNS name"),
    ("https://0177.0.0.1" + PATH, "DNS name"),
    ("https://127.1" + PATH, "DNS name"),
    ("https://[::1]" + PATH, "DNS name"),
    ("https://[::ffff:169.254.169.254]" + PATH, "DNS name"),
    ("https://[fd00::1]" + PATH, "DNS name"),
    # IDNA and host-name shape
    ("https://xn--80ak6aa92e.com" + PATH, "not allowed"),
    ("https://acct.blob.core.windows.net." + PATH, "DNS name"),
    ("https://acct..blob.core.windows.net" + PATH, "DNS name"),
    ("https://-acct.blob.core.windows.net" + PATH, "DNS name"),
    ("https://acct-.blob.core.windows.net" + PATH, "DNS name"),
    ("https://" + "a" * 64 + ".blob.core.windows.net" + PATH, "DNS name"),
    ("https://acct_x.blob.core.windows.net" + PATH, "DNS name"),
    # the allow-list by whole labels
    ("https://blob.core.windows.net" + PATH, "not allowed"),
    ("https://evilblob.core.windows.net" + PATH, "not allowed"),
    ("https://acct.blob.core.windows.net.evil.example" + PATH, "not allowed"),
    ("https://acct.blob.core.windows.net-evil.example" + PATH, "not allowed"),
    ("https://acct.file.core.windows.net" + PATH, "not allowed"),
    # ports
    ("https://acct.blob.core.windows.net:8443" + PATH, "port"),
    ("https://acct.blob.core.windows.net:0" + PATH, "port"),
    ("https://acct.blob.core.windows.net:+443" + PATH, "port"),
    ("https://acct.blob.core.windows.net:443x" + PATH, "port"),
    ("https://acct.blob.core.windows.net:99999" + PATH, "port"),
    # whitespace and control characters anywhere
    ("https://acct\t.blob.core.windows.net" + PATH, "whitespace"),
    ("https://acct.blob.core.windows.net\n.evil.example" + PATH, "whitespace"),
    ("https://acct.blob.core.windows.net/c/model.bin?sig=a b", "whitespace"),
    ("https://acct.blob.core.windows.net/c/model.bin\r\nHost: evil?sig=1", "whitespace"),
    ("https://acct.blob.core.windows.net/c\x00/m?sig=1", "control"),
    ("https://acct.blob.core.windows.net/c\x7f/m?sig=1", "control"),
    ("https://acct.blob.core.windows.net\u00a0" + PATH, "ASCII"),
    (" https://acct.blob.core.windows.net" + PATH, "whitespace"),
    # schemes and shapes
    ("http://acct.blob.core.windows.net" + PATH, "https"),
    ("ftp://acct.blob.core.windows.net" + PATH, "https"),
    ("https:acct.blob.core.windows.net" + PATH, "absolute"),
    ("https:/acct.blob.core.windows.net" + PATH, "absolute"),
    ("//acct.blob.core.windows.net" + PATH, "absolute"),
    ("https://acct.blob.core.windows.net" + PATH + "#frag", "fragment"),
    ("https://acct.blob.core.windows.net", "path"),
    ("https://acct.blob.core.windows.net/c/m?a=<b>", "query"),
    ("https://acct.blob.core.windows.net/c/" + "x" * 5000, "at most"),
]


@pytest.mark.parametrize(("url", "rule"), REFUSED, ids=[f"{i:02d}" for i in range(len(REFUSED))])
def test_crafted_source_urls_are_refused_naming_the_rule(url: str, rule: str) -> None:
    with pytest.raises(SourceRefused) as refused:
        check_source_url(url, ALLOWED)
    assert rule in str(refused.value)
    assert "sig=" not in str(refused.value)  # the reason never quotes the URL


def test_the_table_covers_at_least_forty_urls() -> None:
    assert len(REFUSED) >= 40


@pytest.mark.parametrize(
    ("url", "rebuilt"),
    [
        ("https://acct.blob.core.windows.net" + PATH, "https://acct.blob.core.windows.net" + PATH),
        ("HTTPS://ACCT.Blob.Core.Windows.NET" + PATH, "https://acct.blob.core.windows.net" + PATH),
        ("https://acct.blob.core.windows.net:443" + PATH, "https://acct.blob.core.windows.net" + PATH),
        ("https://acct.blob.core.windows.net:" + PATH, "https://acct.blob.core.windows.net" + PATH),
        (
            "https://a-b-1.blob.core.windows.net/c/%C3%BC.bin",
            "https://a-b-1.blob.core.windows.net/c/%C3%BC.bin",
        ),
        (
            "https://xn--bcher-kva.blob.core.windows.net/c/m",
            "https://xn--bcher-kva.blob.core.windows.net/c/m",
        ),
    ],
)
def test_accepted_urls_are_rebuilt_from_their_checked_parts(url: str, rebuilt: str) -> None:
    assert check_source_url(url, ALLOWED) == rebuilt


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:10100/modelowner/c/m.bin?sig=1",
        "http://localhost:10000/a/b",
        "https://127.0.0.1:10100/a/b",
    ],
)
def test_the_local_emulator_is_a_source_only_in_development(url: str) -> None:
    assert check_source_url(url, ALLOWED, local_emulator_ok=True) == url
    with pytest.raises(SourceRefused):
        check_source_url(url, ALLOWED)


@pytest.mark.parametrize(
    "url",
    ["http://169.254.169.254/x", "http://10.0.0.1:10100/a/b", "http://[::1]:10000/a", "http://example.com/a"],
)
def test_development_mode_still_refuses_http_beyond_loopback(url: str) -> None:
    with pytest.raises(SourceRefused):
        check_source_url(url, ALLOWED, local_emulator_ok=True)


@pytest.mark.parametrize(
    ("host", "ok"),
    [
        ("acct.blob.core.windows.net", True),
        ("a.b", True),
        ("localhost", False),
        ("1.2.3.4", False),
        ("a.123", False),
        ("a.0x1f", False),
        ("a." + "b" * 63, True),
        ("a." + "b" * 64, False),
        (".".join(["abcdefgh"] * 28) + ".com", True),  # 255 characters would be one too many
        (".".join(["abcdefghi"] * 26), False),
    ],
)
def test_dns_names_are_strict(host: str, ok: bool) -> None:
    assert is_dns_name(host) is (ok and len(host) <= 253)


def test_host_patterns_are_a_host_or_a_whole_label_suffix() -> None:
    assert check_host_pattern("*.blob.core.windows.net") is None
    assert check_host_pattern("models.example.org") is None
    for bad in ("*", "*blob.core.windows.net", "a*.b.c", "*.*.b.c", "10.0.0.1", "host:443"):
        assert check_host_pattern(bad), bad
    assert host_allowed("a.b.c.d", ("*.c.d",))
    assert not host_allowed("c.d", ("*.c.d",))
    assert not host_allowed("xc.d", ("*.c.d",))
    assert host_allowed("models.example.org", ("models.example.org",))
    assert not host_allowed("a.models.example.org", ("models.example.org",))
