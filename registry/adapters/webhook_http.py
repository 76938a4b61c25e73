"""WebhookClient over urllib3: one POST to an address checked just before, pinned.

The URL's name is resolved at every delivery and every address checked (registry/webhook_targets.py);
the connection then goes to that address, with TLS verified for the name (SNI and certificate
host name), so a second resolution (DNS rebinding) cannot send it elsewhere. No redirect is
followed (a 3xx is a failed attempt), the connection is given 5 s, each read 10 s and the whole
exchange 15 s, and at most 4 KiB of the answer is read. Nothing of the answer is kept but its status.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import threading
import time
from collections.abc import Mapping

import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection

from registry.domain.webhooks import Attempt
from registry.webhook_targets import (
    Address,
    Resolver,
    Target,
    TargetRefused,
    resolve,
    system_resolver,
    target_of,
)

USER_AGENT = "model-registry-webhooks/1.0"
CONTENT_TYPE = "application/cloudevents+json; charset=utf-8"
MAX_ANSWER_BYTES = 4096


class PinnedWebhookClient:
    def __init__(
        self,
        *,
        dev_mode: bool = False,
        resolver: Resolver = system_resolver,
        connect_seconds: float = 5.0,
        read_seconds: float = 10.0,
        total_seconds: float = 15.0,
        ca_certs: str | None = None,
    ) -> None:
        self.dev_mode = dev_mode  # local development: http and loopback receivers are allowed
        self.resolver = resolver
        self.connect_seconds = connect_seconds
        self.read_seconds = read_seconds
        self.total_seconds = total_seconds
        self.ca_certs = ca_certs  # None: the system's trust store

    def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> Attempt:
        started = time.monotonic()
        try:
            target = target_of(url, dev_mode=self.dev_mode)
            address = resolve(target, self.resolver, loopback_ok=self.dev_mode)
        except TargetRefused as refused:
            return Attempt(None, f"refused: {refused}", _ms(started))
        connection = self._connection(target, address)
        watchdog = threading.Timer(self.total_seconds, _abort, (connection,))
        watchdog.daemon = True
        try:
            watchdog.start()
            connection.connect()
            if connection.sock is not None:
                connection.sock.settimeout(self.read_seconds)
            sent = {
                **headers,
                "Host": target.host_header,
                "Content-Type": CONTENT_TYPE,
                "User-Agent": USER_AGENT,
            }
            connection.request(
                "POST", target.path, body=body, headers=sent, preload_content=False, decode_content=False
            )
            response = connection.getresponse()
            response.read(MAX_ANSWER_BYTES)  # a little of the answer, so the receiver is not cut off
            return Attempt(response.status, "", _ms(started))
        except (OSError, http.client.HTTPException, urllib3.exceptions.HTTPError, ValueError) as error:
            if time.monotonic() - started >= self.total_seconds:
                return Attempt(None, f"took longer than {self.total_seconds:.0f} s", _ms(started))
            return Attempt(None, _why(error), _ms(started))
        finally:
            watchdog.cancel()
            connection.close()

    def _connection(self, target: Target, address: Address) -> HTTPConnection:
        if target.scheme == "https":
            return HTTPSConnection(
                str(address),
                target.port,
                timeout=self.connect_seconds,
                server_hostname=target.host,
                assert_hostname=target.host,
                cert_reqs="CERT_REQUIRED",
                ca_certs=self.ca_certs,
            )
        return HTTPConnection(str(address), target.port, timeout=self.connect_seconds)


def _abort(connection: HTTPConnection) -> None:
    """The whole exchange took too long: cut it (the reading thread then fails at once)."""
    sock = connection.sock
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def _why(error: BaseException) -> str:
    """What went wrong, in a few words (urllib3 wraps the socket's errors: look inside; its
    NewConnectionError is a ConnectTimeoutError too, so the socket's own error decides)."""
    chain: list[BaseException] = []
    seen: BaseException | None = error
    while seen is not None and len(chain) < 10:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    if any(isinstance(e, ConnectionRefusedError) for e in chain):
        return "connection refused"
    if any(isinstance(e, TimeoutError) for e in chain) or (
        isinstance(error, urllib3.exceptions.TimeoutError)
        and not isinstance(error, urllib3.exceptions.NewConnectionError)
    ):
        return "timed out"
    return f"connection failed ({type(error).__name__})"


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
