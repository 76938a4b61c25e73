"""The pinned webhook client against real local servers (TLS with a test CA, on loopback, with
the name's resolution injected): the connection goes to the address checked, TLS is verified for
the name, redirects are not followed, slow receivers are cut off, one resolution per attempt."""

from __future__ import annotations

import datetime as dt
import http.server
import ssl
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from registry.adapters.webhook_http import PinnedWebhookClient

NAME = "hooks.example.test"


@dataclass
class Pki:
    ca: Path
    cert: Path
    key: Path


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A test CA and a certificate it issued for NAME."""
    folder = tmp_path_factory.mktemp("pki")
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("test CA"))
        .issuer_name(_name("test CA"))
        .public_key(ca_key.public_key())
        .serial_number(1)
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(_name(NAME))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(2)
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(NAME)]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pki = Pki(folder / "ca.pem", folder / "cert.pem", folder / "key.pem")
    pki.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    pki.cert.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    pki.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return pki


@dataclass
class Seen:
    requests: list[tuple[str, str, dict[str, str], bytes]] = field(default_factory=list)
    status: int = 200
    delay: float = 0.0
    location: str = ""
    endless: bool = False  # answer with a body that goes on for seconds


@pytest.fixture
def server(pki: Pki) -> Iterator[tuple[int, Seen]]:
    seen = Seen()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            seen.requests.append((self.path, self.headers["Host"], dict(self.headers), body))
            time.sleep(seen.delay)
            self.send_response(seen.status)
            if seen.location:
                self.send_header("Location", seen.location)
            if seen.endless:
                self.end_headers()  # no length: the body ends when the connection does
                try:
                    for _ in range(120):  # 6 s of 8 KiB every 50 ms, unless the client hangs up
                        self.wfile.write(b"x" * 8 * 1024)
                        self.wfile.flush()
                        time.sleep(0.05)
                except OSError:
                    pass
                self.close_connection = True
                return
            self.send_header("Content-Length", str(64 * 1024))
            self.end_headers()
            self.wfile.write(b"x" * 64 * 1024)

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki.cert, pki.key)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd.server_address[1], seen
    httpd.shutdown()
    httpd.server_close()


class Resolver:
    """Answers with the next of its address lists each time it is asked (a rebinding name)."""

    def __init__(self, *answers: Sequence[str]) -> None:
        self.answers = list(answers)
        self.asked: list[str] = []

    def __call__(self, host: str, port: int) -> Sequence[str]:
        self.asked.append(host)
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


def client(pki: Pki, resolver: Resolver, **kwargs: float) -> PinnedWebhookClient:
    # Dev mode lets a loopback address pass the address check: the server is on this machine.
    return PinnedWebhookClient(dev_mode=True, resolver=resolver, ca_certs=str(pki.ca), **kwargs)


def test_the_post_goes_to_the_checked_address_with_tls_verified_for_the_name(
    pki: Pki, server: tuple[int, Seen]
) -> None:
    port, seen = server
    resolver = Resolver(["127.0.0.1"], ["10.0.0.1"])  # a second resolution would say otherwise
    attempt = client(pki, resolver).post(f"https://{NAME}:{port}/in?k=v", b'{"id": 1}', {"webhook-id": "abc"})
    assert attempt.ok and attempt.status == 200 and attempt.duration_ms >= 0
    assert resolver.asked == [NAME]  # resolved once, and that address used
    path, host, headers, body = seen.requests[0]
    assert (path, host, body) == ("/in?k=v", f"{NAME}:{port}", b'{"id": 1}')
    assert headers["webhook-id"] == "abc" and headers["Content-Type"].startswith(
        "application/cloudevents+json"
    )


def test_a_certificate_for_another_name_is_refused(pki: Pki, server: tuple[int, Seen]) -> None:
    port, seen = server
    attempt = client(pki, Resolver(["127.0.0.1"])).post(f"https://other.example.test:{port}/in", b"{}", {})
    assert not attempt.ok and attempt.status is None and "connection failed" in attempt.error
    assert seen.requests == []


def test_an_untrusted_certificate_is_refused(server: tuple[int, Seen]) -> None:
    port, _ = server
    plain = PinnedWebhookClient(dev_mode=True, resolver=Resolver(["127.0.0.1"]))  # the system's CAs
    assert not plain.post(f"https://{NAME}:{port}/in", b"{}", {}).ok


def test_a_redirect_is_not_followed(pki: Pki, server: tuple[int, Seen]) -> None:
    port, seen = server
    seen.status, seen.location = 307, f"https://{NAME}:{port}/elsewhere"
    attempt = client(pki, Resolver(["127.0.0.1"])).post(f"https://{NAME}:{port}/in", b"{}", {})
    assert attempt.status == 307 and not attempt.ok
    assert [r[0] for r in seen.requests] == ["/in"]


def test_a_slow_receiver_is_cut_off(pki: Pki, server: tuple[int, Seen]) -> None:
    port, seen = server
    seen.delay = 3
    started = time.monotonic()
    attempt = client(pki, Resolver(["127.0.0.1"]), read_seconds=1, total_seconds=2).post(
        f"https://{NAME}:{port}/in", b"{}", {}
    )
    assert not attempt.ok and attempt.error in ("timed out", "took longer than 2 s")
    assert time.monotonic() - started < 2.9


def test_a_long_answer_is_read_only_a_little_and_the_attempt_ends_at_once(
    pki: Pki, server: tuple[int, Seen]
) -> None:
    port, seen = server
    seen.endless = True
    attempt = client(pki, Resolver(["127.0.0.1"]), read_seconds=5, total_seconds=10).post(
        f"https://{NAME}:{port}/in", b"{}", {}
    )
    assert attempt.ok and attempt.status == 200 and attempt.error == ""
    assert attempt.duration_ms < 5000  # it read its 4 KiB and hung up, long before any timeout


def test_a_refused_connection_is_a_failed_attempt(pki: Pki) -> None:
    attempt = client(pki, Resolver(["127.0.0.1"])).post(f"http://127.0.0.1:{_closed_port()}/in", b"{}", {})
    assert attempt.status is None and attempt.error == "connection refused"


def _closed_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
